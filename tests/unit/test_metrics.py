"""Request metrics are counted per process and folded into the Prometheus collectors on scrape:
the exposition must be what observing every request directly would give."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pails.obs.metrics import _LATENCY_BUCKETS, Metrics

OBSERVATIONS = [
    ("GetObject", 200, 0.0004),
    ("GetObject", 200, 0.0005),  # on a bucket bound: counted in that bucket (le is inclusive)
    ("GetObject", 404, 0.003),
    ("PutObject", 200, 0.02),
    ("PutObject", 500, 99.0),  # beyond the last bound: +Inf only
]


def _samples(text: bytes) -> list[str]:
    return sorted(
        line
        for line in text.decode().splitlines()
        if line and not line.startswith("#") and "_created" not in line
    )


def _reference() -> bytes:
    registry = CollectorRegistry()
    requests = Counter(
        "pails_s3_requests", "S3 requests by API and HTTP status", ["api", "status"], registry=registry
    )
    latency = Histogram(
        "pails_s3_request_seconds",
        "S3 request latency by API",
        ["api"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    received = Counter("pails_s3_bytes_received", "Request body bytes received", registry=registry)
    sent = Counter("pails_s3_bytes_sent", "Response body bytes sent", registry=registry)
    for api, status, seconds in OBSERVATIONS:
        requests.labels(api, str(status)).inc()
        latency.labels(api).observe(seconds)
    received.inc(4096)
    sent.inc(100)
    sent.inc(28)
    return generate_latest(registry)


def test_folded_counts_render_as_direct_observations() -> None:
    metrics = Metrics()
    for api, status, seconds in OBSERVATIONS:
        metrics.observe(api, status, seconds)
    metrics.bytes_in.inc(4096)
    metrics.bytes_out.inc(100)
    metrics.bytes_out.inc(28)
    rendered = _samples(asyncio.run(metrics.scrape()))
    expected = _samples(_reference())
    assert [line for line in rendered if line.startswith("pails_s3_")] == expected


def test_counts_accumulate_across_scrapes() -> None:
    metrics = Metrics()
    metrics.observe("HeadObject", 200, 0.001)
    metrics.render()
    metrics.observe("HeadObject", 200, 0.001)
    metrics.bytes_out.inc(5)
    text = metrics.render().decode()
    assert 'pails_s3_requests_total{api="HeadObject",status="200"} 2.0' in text
    assert 'pails_s3_request_seconds_count{api="HeadObject"} 2.0' in text
    assert "pails_s3_bytes_sent_total 5.0" in text
