"""Health endpoints and Prometheus /metrics (requests by API and status, latency histogram, bytes in/out)."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request

import pytest
from conftest import unique_bucket_name

pytestmark = pytest.mark.needs_process  # Pails-specific endpoints; a reference S3 has none of them

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def scrape(server) -> list[tuple[str, dict[str, str], float]]:
    status, headers, body = get(f"{server.endpoint}/metrics")
    assert status == 200, (status, body[:300])
    assert headers.get("content-type", "").startswith("text/plain"), headers
    samples = []
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"unparseable metrics line: {line!r}"
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def total(samples, name_re: str, **labels: str) -> float:
    rx = re.compile(name_re)
    return sum(
        v
        for n, lab, v in samples
        if rx.fullmatch(n)
        and not n.endswith("_created")
        and all(lab.get(k) == want for k, want in labels.items())
    )


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
def test_health_endpoints(server, path):
    status, _, _ = get(f"{server.endpoint}{path}")
    assert status == 200


def test_health_needs_no_auth_and_is_not_a_bucket(server, s3):
    # "health" is a valid bucket name; the health endpoints must still answer without credentials
    status, _, _ = get(f"{server.endpoint}/health/live")
    assert status == 200
    assert "health" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def _find_request_counter(samples) -> tuple[str, str, str]:
    """Locate the request counter: a *_total sample whose labels name an S3 API and an HTTP status."""
    for name, labels, _ in samples:
        if not name.endswith("_total") or "request" not in name:
            continue
        api_label = next(
            (k for k, v in labels.items() if v in ("PutObject", "GetObject", "ListBuckets")), None
        )
        status_label = next((k for k, v in labels.items() if re.fullmatch(r"[1-5]\d\d", v)), None)
        if api_label and status_label:
            return name, api_label, status_label
    raise AssertionError(
        "no request counter labelled by API and status: " + repr(sorted({s[0] for s in samples}))
    )


def test_metrics_count_requests_by_api_and_status(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"metrics")
    before = scrape(server)
    name, api, status = _find_request_counter(before)
    for _ in range(3):
        s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    for _ in range(2):
        try:
            s3.get_object(Bucket=bucket, Key="missing")
        except s3.exceptions.NoSuchKey:
            pass
    after = scrape(server)
    got_200 = total(after, re.escape(name), **{api: "GetObject", status: "200"}) - total(
        before, re.escape(name), **{api: "GetObject", status: "200"}
    )
    got_404 = total(after, re.escape(name), **{api: "GetObject", status: "404"}) - total(
        before, re.escape(name), **{api: "GetObject", status: "404"}
    )
    assert got_200 == 3, f"{name}{{{api}=GetObject,{status}=200}} grew by {got_200}"
    assert got_404 == 2, f"{name}{{{api}=GetObject,{status}=404}} grew by {got_404}"


def test_metrics_latency_histogram(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="h", Body=b"x")
    samples = scrape(server)
    buckets = [(n, lab, v) for n, lab, v in samples if n.endswith("_bucket") and "le" in lab]
    assert buckets, "no histogram _bucket samples"
    hist_names = {n[: -len("_bucket")] for n, _, _ in buckets}
    latency = [h for h in hist_names if re.search(r"(latency|duration|seconds)", h)]
    assert latency, f"no latency histogram among {hist_names}"
    h = latency[0]
    inf = [v for n, lab, v in buckets if n == f"{h}_bucket" and lab["le"] == "+Inf"]
    assert inf and sum(inf) > 0
    assert total(samples, re.escape(f"{h}_count")) == sum(inf)
    assert total(samples, re.escape(f"{h}_sum")) > 0


def test_metrics_bytes_in_and_out(server, s3):
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    try:
        before = scrape(server)
        payload = os.urandom(3 * 1024 * 1024)
        s3.put_object(Bucket=name, Key="b", Body=payload)
        s3.get_object(Bucket=name, Key="b")["Body"].read()
        s3.get_object(Bucket=name, Key="b")["Body"].read()
        after = scrape(server)
    finally:
        s3.delete_object(Bucket=name, Key="b")
        s3.delete_bucket(Bucket=name)
    in_re = r".*bytes.*(_in|received|rx|ingress|upload|read)(_bytes)?(_total)?|.*(_in|received|rx|ingress)_bytes(_total)?"
    out_re = r".*bytes.*(_out|sent|tx|egress|download|written)(_bytes)?(_total)?|.*(_out|sent|tx|egress)_bytes(_total)?"
    grew_in = total(after, in_re) - total(before, in_re)
    grew_out = total(after, out_re) - total(before, out_re)
    names = sorted({n for n, _, _ in after if "byte" in n})
    assert grew_in >= len(payload), f"bytes-in grew by {grew_in}; byte metrics: {names}"
    assert grew_out >= 2 * len(payload), f"bytes-out grew by {grew_out}; byte metrics: {names}"
    assert grew_in < 3 * len(payload), f"bytes-in over-counted: {grew_in}"
