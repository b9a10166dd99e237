"""Object API: Put/Get/Head/Delete, DeleteObjects, ranges, metadata, Content-MD5, ETag, overrides."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import time

import pytest
from botocore.exceptions import ClientError
from conftest import unique_bucket_name
from s3util import md5_b64, parse_error, strip_ns, xml_root


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_put_get_head_delete_roundtrip(s3, bucket):
    body = os.urandom(100_000)
    md5 = hashlib.md5(body).hexdigest()
    put = s3.put_object(Bucket=bucket, Key="obj.bin", Body=body)
    assert put["ETag"] == f'"{md5}"'
    got = s3.get_object(Bucket=bucket, Key="obj.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{md5}"'
    assert got["ContentLength"] == len(body)
    head = s3.head_object(Bucket=bucket, Key="obj.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == f'"{md5}"'
    assert head["ResponseMetadata"]["HTTPHeaders"].get("accept-ranges") == "bytes"
    dele = s3.delete_object(Bucket=bucket, Key="obj.bin")
    assert dele["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj.bin")
    assert err(e) == ("NoSuchKey", 404)


def test_empty_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0


def test_all_byte_values_roundtrip(s3, bucket):
    body = bytes(range(256)) * 1000 + b"\r\n\r\n0\r\n"
    s3.put_object(Bucket=bucket, Key="bytes", Body=body)
    assert s3.get_object(Bucket=bucket, Key="bytes")["Body"].read() == body


def test_overwrite_replaces_content_and_metadata(s3, bucket):
    s3.put_object(
        Bucket=bucket, Key="k", Body=b"first version", Metadata={"v": "1"}, ContentType="text/plain"
    )
    s3.put_object(Bucket=bucket, Key="k", Body=b"2nd", Metadata={"other": "x"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"2nd"
    assert got["Metadata"] == {"other": "x"}
    assert got["ContentType"] != "text/plain"
    assert got["ETag"] == f'"{hashlib.md5(b"2nd").hexdigest()}"'


def test_last_modified(s3, bucket):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=2)
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    head = s3.head_object(Bucket=bucket, Key="t")
    assert before <= head["LastModified"] <= after
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    assert before <= listed["LastModified"] <= after
    assert abs((listed["LastModified"] - head["LastModified"]).total_seconds()) < 1.0


def test_missing_key_and_bucket(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert err(e) == ("NoSuchKey", 404)
    assert e.value.response["Error"].get("Key") in (None, "nope")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert err(e) == ("404", 404)
    missing = unique_bucket_name("missing")
    for call in (
        lambda: s3.get_object(Bucket=missing, Key="k"),
        lambda: s3.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: s3.list_objects_v2(Bucket=missing),
        lambda: s3.list_objects(Bucket=missing),
        lambda: s3.delete_object(Bucket=missing, Key="k"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("NoSuchBucket", 404)


def test_delete_missing_key_is_204(s3, bucket):
    resp = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_head_object_error_has_no_body(raw, bucket):
    r = raw.request("HEAD", f"/{bucket}/nope")
    assert r.status == 404, r.describe()
    assert r.body == b""
    assert r.header("x-amz-request-id")


# ---- metadata and standard headers ----


def test_user_metadata_and_standard_headers(s3, bucket):
    expires = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    s3.put_object(
        Bucket=bucket,
        Key="meta",
        Body=b"<html></html>",
        Metadata={"color": "blue", "multi-word-key": "Some Value 42"},
        ContentType="text/html; charset=utf-8",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="x.html"',
        ContentLanguage="de-CH",
        CacheControl="max-age=3600, public",
        Expires=expires,
    )
    for resp in (s3.head_object(Bucket=bucket, Key="meta"), s3.get_object(Bucket=bucket, Key="meta")):
        assert resp["Metadata"] == {"color": "blue", "multi-word-key": "Some Value 42"}
        assert resp["ContentType"] == "text/html; charset=utf-8"
        assert resp["ContentEncoding"] == "identity"
        assert resp["ContentDisposition"] == 'attachment; filename="x.html"'
        assert resp["ContentLanguage"] == "de-CH"
        assert resp["CacheControl"] == "max-age=3600, public"
        hdrs = resp["ResponseMetadata"]["HTTPHeaders"]
        assert hdrs.get("expires") == "Thu, 02 Jan 2031 03:04:05 GMT", hdrs


def test_metadata_raw_headers_case_insensitive(raw, bucket):
    r = raw.request("PUT", f"/{bucket}/m", body=b"x", headers={"X-Amz-Meta-CamelCase": "v1"})
    assert r.status == 200, r.describe()
    r = raw.request("HEAD", f"/{bucket}/m")
    assert r.status == 200, r.describe()
    assert r.header("x-amz-meta-camelcase") == "v1"


def test_default_content_type(raw, bucket):
    r = raw.request("PUT", f"/{bucket}/noctype", body=b"x")
    assert r.status == 200, r.describe()
    r = raw.request("GET", f"/{bucket}/noctype")
    assert r.header("Content-Type") in ("binary/octet-stream", "application/octet-stream"), r.describe()


def test_response_content_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"data", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/json",
        ResponseContentDisposition='inline; filename="o.json"',
        ResponseContentEncoding="gzip-not-really",
        ResponseContentLanguage="fr",
        ResponseCacheControl="no-cache",
        ResponseExpires=dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
    )
    assert got["Body"].read() == b"data"
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == 'inline; filename="o.json"'
    assert got["ContentEncoding"] == "gzip-not-really"
    assert got["ContentLanguage"] == "fr"
    assert got["CacheControl"] == "no-cache"
    assert got["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Mon, 06 May 2030 07:08:09 GMT"
    # overrides are per-request, not stored
    assert s3.head_object(Bucket=bucket, Key="o")["ContentType"] == "text/plain"


# ---- Content-MD5 / checksums ----


def test_content_md5_correct(raw, bucket):
    body = b"checked body"
    r = raw.request("PUT", f"/{bucket}/md5ok", body=body, headers={"Content-MD5": md5_b64(body)})
    assert r.status == 200, r.describe()
    assert r.header("ETag") == f'"{hashlib.md5(body).hexdigest()}"'


def test_content_md5_mismatch_is_bad_digest(raw, s3, bucket):
    r = raw.request("PUT", f"/{bucket}/md5bad", body=b"actual", headers={"Content-MD5": md5_b64(b"other")})
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="md5bad")
    assert err(e)[1] == 404


@pytest.mark.parametrize(
    "value",
    ["not-base64!!", base64.b64encode(b"short").decode(), "", base64.b64encode(b"x" * 17).decode()],
    ids=["garbage", "short", "empty", "17-bytes"],
)
def test_content_md5_malformed_is_invalid_digest(raw, s3, bucket, value):
    r = raw.request("PUT", f"/{bucket}/md5malformed", body=b"actual", headers={"Content-MD5": value})
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] == "InvalidDigest"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="md5malformed")
    assert err(e)[1] == 404


def test_boto3_content_md5_param(s3, bucket):
    body = b"boto md5"
    s3.put_object(Bucket=bucket, Key="bm", Body=body, ContentMD5=md5_b64(body))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bm2", Body=body, ContentMD5=md5_b64(b"nope"))
    assert err(e) == ("BadDigest", 400)


def test_boto3_default_put_with_crc32_header(s3, bucket):
    """Newest boto3 adds x-amz-checksum-crc32 (in a header over plain http) by default."""
    seen: dict[str, str] = {}

    def capture(request, **kwargs):
        seen.update({k.lower(): v for k, v in request.headers.items()})

    s3.meta.events.register("before-send.s3.PutObject", capture)
    try:
        s3.put_object(Bucket=bucket, Key="crc", Body=b"crc body")
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", capture)
    assert any(k.startswith("x-amz-checksum-") or k == "x-amz-trailer" for k in seen), seen
    assert s3.get_object(Bucket=bucket, Key="crc")["Body"].read() == b"crc body"


def test_wrong_crc32_header_is_rejected(raw, s3, bucket):
    from s3util import crc32_b64

    r = raw.request(
        "PUT",
        f"/{bucket}/crcbad",
        body=b"payload",
        headers={"x-amz-checksum-crc32": crc32_b64(b"different"), "x-amz-sdk-checksum-algorithm": "CRC32"},
    )
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] in ("BadDigest", "InvalidRequest")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="crcbad")
    assert err(e)[1] == 404


# ---- ranges ----


@pytest.fixture
def hundred(s3, bucket):
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    return body


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
        ("bytes=50-50", 50, 50),
        ("bytes=90-1000", 90, 99),
        ("bytes=-500", 0, 99),
    ],
)
def test_range_requests(raw, bucket, hundred, spec, start, end):
    r = raw.request("GET", f"/{bucket}/r", headers={"Range": spec})
    assert r.status == 206, r.describe()
    assert r.body == hundred[start : end + 1]
    assert r.header("Content-Range") == f"bytes {start}-{end}/100"
    assert r.header("Content-Length") == str(end - start + 1)


def test_range_via_boto3(s3, bucket, hundred):
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=3-7")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == hundred[3:8]
    assert got["ContentRange"] == "bytes 3-7/100"
    assert got["ContentLength"] == 5


@pytest.mark.parametrize("spec", ["bytes=100-", "bytes=200-300", "bytes=100-100"])
def test_unsatisfiable_range(raw, bucket, hundred, spec):
    r = raw.request("GET", f"/{bucket}/r", headers={"Range": spec})
    assert r.status == 416, r.describe()
    e = parse_error(r.body)
    assert e["Code"] == "InvalidRange"
    assert r.header("x-amz-request-id")


def test_head_with_range(raw, bucket, hundred):
    r = raw.request("HEAD", f"/{bucket}/r", headers={"Range": "bytes=0-9"})
    assert r.status == 206, r.describe()
    assert r.header("Content-Length") == "10"
    assert r.header("Content-Range") == "bytes 0-9/100"
    assert r.body == b""


def test_range_on_empty_object(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="e", Body=b"")
    r = raw.request("GET", f"/{bucket}/e", headers={"Range": "bytes=0-"})
    assert r.status == 416, r.describe()
    assert parse_error(r.body)["Code"] == "InvalidRange"


# ---- DeleteObjects ----


def test_delete_objects_verbose(s3, bucket):
    for k in ("a", "b", "c/d"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "c/d"}, {"Key": "never"}], "Quiet": False}
    )
    deleted = sorted(d["Key"] for d in resp.get("Deleted", []))
    assert deleted == ["a", "c/d", "never"]
    assert resp.get("Errors", []) == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["b"]


def test_delete_objects_quiet(s3, bucket):
    for k in ("q1", "q2"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}], "Quiet": True})
    assert resp.get("Deleted", []) == []
    assert resp.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_raw_xml_and_md5(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="x&y<z>", Body=b"x")
    doc = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>x&amp;y&lt;z&gt;</Key></Object></Delete>"
    )
    r = raw.request(
        "POST", f"/{bucket}", query=[("delete", "")], body=doc, headers={"Content-MD5": md5_b64(doc)}
    )
    assert r.status == 200, r.describe()
    root = strip_ns(xml_root(r.body))
    assert root.tag == "DeleteResult"
    assert [d.findtext("Key") for d in root.findall("Deleted")] == ["x&y<z>"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_malformed_xml(raw, bucket):
    doc = b"<Delete><Object><Key>unterminated"
    r = raw.request(
        "POST", f"/{bucket}", query=[("delete", "")], body=doc, headers={"Content-MD5": md5_b64(doc)}
    )
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] == "MalformedXML"


def test_delete_objects_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=unique_bucket_name("missing"), Delete={"Objects": [{"Key": "a"}]})
    assert err(e) == ("NoSuchBucket", 404)


# ---- larger objects, interrupted and concurrent writes ----


def test_random_ranges_on_multi_chunk_object(raw, s3, bucket):
    import random

    size = 20 * 1024 * 1024 + 12345
    body = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    rng = random.Random(1234)
    boundaries = [k * (1 << 20) for k in range(1, 21)] + [k * (4 << 20) for k in range(1, 6)]
    specs = [(b - 1, b) for b in boundaries[:10]]
    specs += [(a, a + rng.randint(0, 3 << 20)) for a in (rng.randrange(size) for _ in range(20))]
    for start, end in specs:
        end = min(end, size - 1)
        r = raw.request("GET", f"/{bucket}/big", headers={"Range": f"bytes={start}-{end}"})
        assert r.status == 206, r.describe()
        assert r.body == body[start : end + 1], (start, end)
        assert r.header("Content-Range") == f"bytes {start}-{end}/{size}"
        assert r.header("ETag") == etag
    got = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.md5(got).hexdigest() == hashlib.md5(body).hexdigest()


def test_client_disconnect_mid_upload_keeps_old_version(server, s3, bucket):
    import socket

    from s3util import UNSIGNED, sign, uri_encode

    s3.put_object(Bucket=bucket, Key="k", Body=b"old version")
    path = uri_encode(f"/{bucket}/k", keep_slash=True)
    total = 8 * 1024 * 1024
    hdrs = {"Host": f"{server.host}:{server.port}", "Content-Length": str(total)}
    signed = sign("PUT", path, [], hdrs, server.creds, UNSIGNED).headers
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        sock.sendall(os.urandom(total // 2))
    # fresh key too
    hdrs2 = sign("PUT", path + "-new", [], hdrs, server.creds, UNSIGNED).headers
    head2 = f"PUT {path}-new HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs2.items()) + "\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head2.encode())
        sock.sendall(os.urandom(1000))
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # give the server a moment to notice the disconnects
        got = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
        assert got == b"old version"
        time.sleep(0.5)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k-new")
    assert err(e)[1] == 404
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"newer")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"newer"


def test_concurrent_overwrites_are_never_torn(server, bucket):
    from concurrent.futures import ThreadPoolExecutor

    versions = {i: bytes([i]) * (1024 * 1024 + i) for i in range(8)}
    clients = [server.client() for _ in range(4)]

    def put(i: int) -> None:
        clients[i % 4].put_object(Bucket=bucket, Key="contended", Body=versions[i])

    def get(i: int) -> bytes:
        try:
            return clients[i % 4].get_object(Bucket=bucket, Key="contended")["Body"].read()
        except ClientError:
            return b""

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(put, i) for i in range(8)] + [pool.submit(get, i) for i in range(8)]
        results = [f.result() for f in futures]
    for body in results[8:]:
        assert body == b"" or body in versions.values(), f"torn read: {len(body)} bytes"
    final = clients[0].get_object(Bucket=bucket, Key="contended")
    data = final["Body"].read()
    assert data in versions.values()
    assert final["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    listed = clients[0].list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("contended", len(data))]


def test_concurrent_puts_distinct_keys(server, bucket):
    from concurrent.futures import ThreadPoolExecutor

    client = server.client(max_pool_connections=16)
    bodies = {f"p/{i:03d}": os.urandom(1000 + i) for i in range(120)}
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), bodies.items()))
    listed = {o["Key"]: o["Size"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {k: len(v) for k, v in bodies.items()}
    for k in list(bodies)[::17]:
        assert client.get_object(Bucket=bucket, Key=k)["Body"].read() == bodies[k]


def test_metadata_too_large(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="meta-big", Body=b"x", Metadata={"big": "v" * 2100})
    assert err(e) == ("MetadataTooLarge", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="meta-big")
    assert err(e)[1] == 404
