"""SigV4 (header and presigned), payload modes, credential errors, Content-Length and Expect handling."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError
from s3util import (
    EMPTY_SHA256,
    STREAMING_SIGNED,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED,
    Creds,
    HTTPReader,
    Response,
    amz_now,
    crc32_b64,
    parse_error,
    sign,
    signed_chunked_body,
    signed_chunked_length,
    trailer_chunked_body,
    uri_encode,
)


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def assert_absent(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert err(e)[1] == 404, f"{key} should not have been stored"


def assert_error(r: Response, status: int, code: str | tuple[str, ...]) -> dict[str, str]:
    assert r.status == status, r.describe()
    e = parse_error(r.body)
    codes = (code,) if isinstance(code, str) else code
    assert e.get("Code") in codes, r.describe()
    return e


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> Response:
    headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
    req = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Response(resp.status, resp.reason, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.reason, e.headers, e.read())


# ---- header-signed requests ----


@pytest.mark.auth
def test_wrong_secret_signature_does_not_match(server, bucket):
    bad = server.client(secret_key="wrong-secret")  # same key id, wrong secret
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert err(e) == ("SignatureDoesNotMatch", 403)
    r = server.raw.request("GET", f"/{bucket}", creds=Creds(server.access_key, "wrong-secret", server.region))
    assert_error(r, 403, "SignatureDoesNotMatch")


@pytest.mark.auth
def test_unknown_access_key(server, bucket):
    r = server.raw.request(
        "GET", f"/{bucket}/x", creds=Creds("AKIANOSUCHKEY0000000", "whatever", server.region)
    )
    assert_error(r, 403, "InvalidAccessKeyId")
    r = server.raw.request("GET", "/", creds=Creds("AKIANOSUCHKEY0000000", "whatever", server.region))
    assert_error(r, 403, "InvalidAccessKeyId")


@pytest.mark.auth
@pytest.mark.parametrize("offset", [-1200, 1200], ids=["20min-behind", "20min-ahead"])
def test_request_time_too_skewed(raw, s3, bucket, offset):
    r = raw.request("PUT", f"/{bucket}/skewed", body=b"x", amz_date=amz_now(offset))
    assert_error(r, 403, "RequestTimeTooSkewed")
    assert_absent(s3, bucket, "skewed")


def test_small_skew_is_accepted(raw, bucket):
    r = raw.request("PUT", f"/{bucket}/slight", body=b"x", amz_date=amz_now(-120))
    assert r.status == 200, r.describe()


@pytest.mark.auth
def test_anonymous_requests_denied(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    for method, path, body in [
        ("GET", f"/{bucket}/private", b""),
        ("GET", "/", b""),
        ("GET", f"/{bucket}", b""),
        ("PUT", f"/{bucket}/anon", b"data"),
        ("DELETE", f"/{bucket}/private", b""),
    ]:
        r = raw.request(method, path, body=body, anonymous=True)
        assert_error(r, 403, "AccessDenied")
    r = raw.request("HEAD", f"/{bucket}/private", anonymous=True)
    assert r.status == 403 and r.body == b"", r.describe()
    assert_absent(s3, bucket, "anon")
    assert s3.get_object(Bucket=bucket, Key="private")["Body"].read() == b"secret"


@pytest.mark.auth
@pytest.mark.parametrize(
    "auth",
    [
        "AWS4-HMAC-SHA256 Credential={ak}/{date}/us-east-1/s3, SignedHeaders=host;x-amz-date, Signature={sig}",
        "AWS4-HMAC-SHA256 Credential={ak}, SignedHeaders=host;x-amz-date, Signature={sig}",
        "AWS4-HMAC-SHA256 Credential={ak}/{date}/us-east-1/s3/aws4_request, Signature={sig}",
        "AWS4-HMAC-SHA256 Credential={ak}/{date}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256 garbage",
    ],
    ids=["credential-4-parts", "credential-key-only", "no-signed-headers", "no-signature", "garbage"],
)
def test_authorization_header_malformed(server, bucket, auth):
    date = amz_now()
    header = auth.format(ak=server.access_key, date=date[:8], sig="0" * 64)
    headers = {
        "Host": server.raw.netloc,
        "x-amz-date": date,
        "x-amz-content-sha256": EMPTY_SHA256,
        "Authorization": header,
    }
    r = server.raw.send("GET", f"/{bucket}", headers)
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] in ("AuthorizationHeaderMalformed", "InvalidArgument"), r.describe()


@pytest.mark.auth
def test_wrong_region_in_scope(server, bucket):
    r = server.raw.request(
        "GET", f"/{bucket}", creds=Creds(server.access_key, server.secret_key, "eu-central-1")
    )
    assert r.status in (400, 403), r.describe()
    assert parse_error(r.body)["Code"] in ("AuthorizationHeaderMalformed", "SignatureDoesNotMatch"), (
        r.describe()
    )


@pytest.mark.auth
def test_tampered_signed_header(server, s3, bucket):
    body = b"tamper"
    hdrs = {"Host": server.raw.netloc, "x-amz-meta-a": "1", "Content-Length": str(len(body))}
    path = uri_encode(f"/{bucket}/tampered", keep_slash=True)
    signed = sign("PUT", path, [], hdrs, server.creds, hashlib.sha256(body).hexdigest()).headers
    signed["x-amz-meta-a"] = "2"
    r = server.raw.send("PUT", path, signed, body)
    assert_error(r, 403, "SignatureDoesNotMatch")
    assert_absent(s3, bucket, "tampered")


@pytest.mark.auth
def test_tampered_query(server, bucket):
    path = uri_encode(f"/{bucket}", keep_slash=True)
    signed = sign(
        "GET", path, [("prefix", "a")], {"Host": server.raw.netloc}, server.creds, EMPTY_SHA256
    ).headers
    r = server.raw.send("GET", path + "?prefix=b", signed)
    assert_error(r, 403, "SignatureDoesNotMatch")


# ---- payload modes ----


def test_hex_sha256_payload(raw, s3, bucket):
    body = os.urandom(4096)
    r = raw.request("PUT", f"/{bucket}/hex", body=body)
    assert r.status == 200, r.describe()
    assert s3.get_object(Bucket=bucket, Key="hex")["Body"].read() == body


@pytest.mark.auth
def test_wrong_content_sha256_mismatch(raw, s3, bucket):
    r = raw.request(
        "PUT", f"/{bucket}/shabad", body=b"real body", sign_payload=hashlib.sha256(b"other").hexdigest()
    )
    assert_error(r, 400, "XAmzContentSHA256Mismatch")
    assert_absent(s3, bucket, "shabad")


def test_unsigned_payload(raw, s3, bucket):
    body = os.urandom(10_000)
    r = raw.request("PUT", f"/{bucket}/unsigned", body=body, sign_payload=UNSIGNED)
    assert r.status == 200, r.describe()
    assert r.header("ETag") == f'"{hashlib.md5(body).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == body


def _streaming_put(server, bucket: str, key: str, data: bytes, chunk: int, tamper: bool = False) -> Response:
    path = uri_encode(f"/{bucket}/{key}", keep_slash=True)
    hdrs = {
        "Host": server.raw.netloc,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "Content-Length": str(signed_chunked_length(len(data), chunk)),
        "Content-Type": "text/plain",
    }
    sig = sign("PUT", path, [], hdrs, server.creds, STREAMING_SIGNED)
    body = signed_chunked_body(sig, data, chunk)
    assert len(body) == int(hdrs["Content-Length"])
    if tamper:
        # flip one payload byte in the second chunk, keeping its signature
        second_chunk = body.index(b"\r\n") + 2 + chunk + 2
        idx = body.index(b"\r\n", second_chunk) + 2 + 10
        body = body[:idx] + bytes([body[idx] ^ 0xFF]) + body[idx + 1 :]
    return server.raw.send("PUT", path, sig.headers, body)


@pytest.mark.parametrize("size", [0, 1, 8192, 200_000], ids=["empty", "1B", "one-chunk", "multi-chunk"])
def test_streaming_signed_payload(server, s3, bucket, size):
    data = os.urandom(size)
    r = _streaming_put(server, bucket, "streamed", data, chunk=65536)
    assert r.status == 200, r.describe()
    assert r.header("ETag") == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="streamed")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/plain"
    assert got.get("ContentEncoding") in (None, ""), "aws-chunked must not be stored as Content-Encoding"


@pytest.mark.auth
def test_streaming_signed_payload_tampered_chunk(server, s3, bucket):
    r = _streaming_put(server, bucket, "streamed-bad", os.urandom(200_000), chunk=65536, tamper=True)
    assert_error(r, 403, "SignatureDoesNotMatch")
    assert_absent(s3, bucket, "streamed-bad")


def _trailer_put(server, bucket: str, key: str, data: bytes, checksum: str) -> Response:
    path = uri_encode(f"/{bucket}/{key}", keep_slash=True)
    body = trailer_chunked_body(data, "x-amz-checksum-crc32", checksum, chunk_size=16384)
    hdrs = {
        "Host": server.raw.netloc,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-sdk-checksum-algorithm": "CRC32",
        "Content-Length": str(len(body)),
    }
    signed = sign("PUT", path, [], hdrs, server.creds, STREAMING_UNSIGNED_TRAILER).headers
    return server.raw.send("PUT", path, signed, body)


@pytest.mark.parametrize("size", [0, 100, 100_000], ids=["empty", "small", "multi-chunk"])
def test_streaming_unsigned_trailer_crc32(server, s3, bucket, size):
    data = os.urandom(size)
    r = _trailer_put(server, bucket, "trailer", data, crc32_b64(data))
    assert r.status == 200, r.describe()
    assert r.header("ETag") == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data


def test_streaming_unsigned_trailer_bad_crc32(server, s3, bucket):
    data = os.urandom(50_000)
    r = _trailer_put(server, bucket, "trailer-bad", data, crc32_b64(data + b"!"))
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] in ("BadDigest", "InvalidRequest"), r.describe()
    assert_absent(s3, bucket, "trailer-bad")


def test_streaming_trailer_bad_crc32_keeps_old_version(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"old")
    data = os.urandom(5000)
    r = _trailer_put(server, bucket, "keep", data, crc32_b64(b"wrong"))
    assert r.status == 400, r.describe()
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"old"


def test_boto3_payload_signing_enabled(server, bucket):
    client = server.client(s3={"payload_signing_enabled": True})
    body = os.urandom(30_000)
    seen: dict[str, str] = {}
    client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **kw: seen.update({k.lower(): v for k, v in request.headers.items()}),
    )
    client.put_object(Bucket=bucket, Key="signed-payload", Body=body)
    assert client.get_object(Bucket=bucket, Key="signed-payload")["Body"].read() == body
    assert seen.get("x-amz-content-sha256") not in (None, UNSIGNED), seen


# ---- presigned URLs ----


def test_presigned_get_and_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre sign/ü.txt", Body=b"presigned content")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre sign/ü.txt"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url
    r = fetch(url)
    assert r.status == 200, r.describe()
    assert r.body == b"presigned content"
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300
    )
    r = fetch(put_url, method="PUT", data=b"via presigned put")
    assert r.status == 200, r.describe()
    assert s3.get_object(Bucket=bucket, Key="uploaded")["Body"].read() == b"via presigned put"


def test_presigned_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"{}", ContentType="text/plain")
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "o", "ResponseContentType": "application/json"},
        ExpiresIn=300,
    )
    r = fetch(url)
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") == "application/json"


@pytest.mark.auth
def test_presigned_url_expires(s3, bucket):
    s3.put_object(Bucket=bucket, Key="exp", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "exp"}, ExpiresIn=1)
    time.sleep(2.1)
    r = fetch(url)
    assert_error(r, 403, "AccessDenied")


@pytest.mark.auth
def test_presigned_url_tampered(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"}, ExpiresIn=300)
    parts = urllib.parse.urlsplit(url)
    r = fetch(urllib.parse.urlunsplit(parts._replace(path=parts.path[:-1] + "b")))
    assert_error(r, 403, "SignatureDoesNotMatch")
    q = urllib.parse.parse_qsl(parts.query)
    q = [(k, ("0" * 64 if k == "X-Amz-Signature" else v)) for k, v in q]
    r = fetch(urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q))))
    assert_error(r, 403, "SignatureDoesNotMatch")


@pytest.mark.auth
def test_presigned_url_wrong_secret(server, bucket, s3):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    bad = server.client(secret_key="nope")
    url = bad.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"}, ExpiresIn=300)
    assert_error(fetch(url), 403, "SignatureDoesNotMatch")


# ---- transport-level: Content-Length and Expect ----


def _socket_request(server, head: bytes, body: bytes = b"", wait_continue: bool = False):
    """Send a raw request. With wait_continue, wait for the interim response before sending the body.

    Returns (first status seen, final status, final headers, final body)."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        reader = HTTPReader(sock)
        sock.sendall(head)
        first = None
        if wait_continue:
            status, headers = reader.read_head()
            first = status
            if status >= 200:  # final answer without 100 Continue: the body must not be needed
                return first, status, headers, reader.read_body(status, headers)
        if body:
            sock.sendall(body)
        status, headers, data = reader.read_final()
        return first, status, headers, data


def _head_bytes(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def test_put_without_content_length_is_411(server, s3, bucket):
    path = uri_encode(f"/{bucket}/nolen", keep_slash=True)
    hdrs = sign("PUT", path, [], {"Host": server.raw.netloc}, server.creds, UNSIGNED).headers
    hdrs["Connection"] = "close"
    _, status, headers, body = _socket_request(server, _head_bytes("PUT", path, hdrs))
    assert status == 411, (status, headers, body)
    assert parse_error(body)["Code"] == "MissingContentLength"
    assert headers.get("x-amz-request-id")
    assert_absent(s3, bucket, "nolen")


def test_expect_100_continue(server, s3, bucket):
    body = os.urandom(300_000)
    path = uri_encode(f"/{bucket}/expect", keep_slash=True)
    hdrs = {"Host": server.raw.netloc, "Content-Length": str(len(body)), "Expect": "100-continue"}
    signed = sign("PUT", path, [], hdrs, server.creds, hashlib.sha256(body).hexdigest()).headers
    signed["Connection"] = "close"
    interim, status, headers, data = _socket_request(server, _head_bytes("PUT", path, signed), body, True)
    assert interim == 100, (interim, status, headers, data)
    assert status == 200, (status, headers, data)
    assert headers.get("etag") == f'"{hashlib.md5(body).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == body


@pytest.mark.auth
def test_expect_100_continue_rejected_early(server, s3, bucket):
    """With bad credentials the server may answer the final 403 without 100 Continue; it must not hang."""
    body = os.urandom(100_000)
    path = uri_encode(f"/{bucket}/expect-bad", keep_slash=True)
    hdrs = {"Host": server.raw.netloc, "Content-Length": str(len(body)), "Expect": "100-continue"}
    bad = Creds(server.access_key, "wrong", server.region)
    signed = sign("PUT", path, [], hdrs, bad, hashlib.sha256(body).hexdigest()).headers
    signed["Connection"] = "close"
    _, status, _, data = _socket_request(server, _head_bytes("PUT", path, signed), body, True)
    assert status == 403, (status, data)
    assert parse_error(data)["Code"] == "SignatureDoesNotMatch"
    assert_absent(s3, bucket, "expect-bad")


def test_streaming_decoded_length_mismatch(server, s3, bucket):
    data = os.urandom(100_000)
    path = uri_encode(f"/{bucket}/declen", keep_slash=True)
    hdrs = {
        "Host": server.raw.netloc,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data) + 10),  # lies: more than the chunks carry
        "Content-Length": str(signed_chunked_length(len(data), 65536)),
    }
    sig = sign("PUT", path, [], hdrs, server.creds, STREAMING_SIGNED)
    r = server.raw.send("PUT", path, sig.headers, signed_chunked_body(sig, data, 65536))
    assert 400 <= r.status < 500, r.describe()
    assert parse_error(r.body)["Code"] in ("IncompleteBody", "InvalidRequest", "InvalidArgument", "BadDigest")
    assert_absent(s3, bucket, "declen")


def test_streaming_malformed_chunk_framing(server, s3, bucket):
    data = os.urandom(1000)
    path = uri_encode(f"/{bucket}/badframe", keep_slash=True)
    body = b"zz;chunk-signature=" + b"0" * 64 + b"\r\n" + data + b"\r\n"
    hdrs = {
        "Host": server.raw.netloc,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "Content-Length": str(len(body)),
    }
    sig = sign("PUT", path, [], hdrs, server.creds, STREAMING_SIGNED)
    r = server.raw.send("PUT", path, sig.headers, body)
    assert 400 <= r.status < 500, r.describe()
    parse_error(r.body)
    assert_absent(s3, bucket, "badframe")
    assert server.raw.request("GET", f"/{bucket}").status == 200  # server still healthy
