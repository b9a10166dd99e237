"""The HTTP/1.1 layer on the wire: keep-alive, pipelining, request-head limits, chunked uploads,
early answers, truncated bodies and garbage, all over raw sockets against a real server."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time

import pytest
from botocore.exceptions import ClientError
from conftest import unique_bucket_name
from s3util import UNSIGNED, HTTPReader, parse_error, sign, uri_encode


def signed_lines(server, method: str, path: str, extra: dict[str, str] | None = None) -> list[str]:
    headers = sign(
        method, path, [], {"Host": server.raw.netloc, **(extra or {})}, server.creds, UNSIGNED
    ).headers
    return [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]


def head_bytes(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(server) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def test_keep_alive_many_requests_on_one_connection(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    path = uri_encode(f"/{bucket}/k", keep_slash=True)
    with connect(server) as sock:
        reader = HTTPReader(sock)
        ids = set()
        for _ in range(20):
            sock.sendall(head_bytes(signed_lines(server, "GET", path)))
            status, headers, body = reader.read_final()
            assert (status, body) == (200, b"hello")
            assert "close" not in headers.get("connection", "")
            ids.add(headers["x-amz-request-id"])
        assert len(ids) == 20


def test_pipelined_requests_are_answered_in_order(server, s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"p{i}", Body=f"body-{i}".encode() * (i + 1))
    wire = b"".join(
        head_bytes(signed_lines(server, "GET", uri_encode(f"/{bucket}/p{i}", keep_slash=True)))
        for i in range(5)
    )
    with connect(server) as sock:
        sock.sendall(wire)  # all five before reading any answer
        reader = HTTPReader(sock)
        for i in range(5):
            status, _, body = reader.read_final()
            assert status == 200 and body == f"body-{i}".encode() * (i + 1)


def test_head_response_has_length_but_no_body(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="h", Body=b"x" * 1234)
    path = uri_encode(f"/{bucket}/h", keep_slash=True)
    with connect(server) as sock:
        sock.sendall(head_bytes(signed_lines(server, "HEAD", path)))
        sock.sendall(head_bytes(signed_lines(server, "GET", path)))
        reader = HTTPReader(sock)
        status, headers, body = reader.read_final("HEAD")
        assert status == 200 and headers["content-length"] == "1234" and body == b""
        status, headers, body = reader.read_final()  # the next response starts right after the head
        assert status == 200 and body == b"x" * 1234


@pytest.mark.parametrize("size", [70 * 1024, 200 * 1024])
def test_oversized_request_head_is_refused_with_xml(server, s3, bucket, size):
    path = uri_encode(f"/{bucket}/big-head", keep_slash=True)
    lines = [*signed_lines(server, "PUT", path, {"Content-Length": "1"}), f"x-amz-meta-big: {'a' * size}"]
    with connect(server) as sock:
        try:
            sock.sendall(head_bytes(lines) + b"x")
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body = HTTPReader(sock).read_final()
    assert status == 400
    error = parse_error(body)
    assert error["Code"] == "RequestHeaderSectionTooLarge" and error.get("RequestId"), body
    assert headers.get("x-amz-request-id")
    with pytest.raises(ClientError, match=r"404|Not Found"):
        s3.head_object(Bucket=bucket, Key="big-head")


def test_oversized_head_begun_behind_a_body_is_refused(server, s3, bucket):
    """The next request's head starts in the same read as the previous body's end and ends in a
    later read: its size still counts from its first byte."""
    first = uri_encode(f"/{bucket}/before", keep_slash=True)
    second = uri_encode(f"/{bucket}/big-head-2", keep_slash=True)
    put = head_bytes(signed_lines(server, "PUT", first, {"Content-Length": "5"})) + b"hello"
    big = head_bytes([*signed_lines(server, "GET", second), f"x-amz-meta-big: {'a' * 70 * 1024}"])
    with connect(server) as sock:
        sock.sendall(put + big[: 60 * 1024])
        reader = HTTPReader(sock)
        status, _, _ = reader.read_final()
        assert status == 200
        try:
            sock.sendall(big[60 * 1024 :])
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = reader.read_final()
    assert status == 400 and parse_error(body)["Code"] == "RequestHeaderSectionTooLarge", body


def test_a_header_value_that_is_not_utf8_is_answered(server, s3, bucket):
    """A value with a byte that is not UTF-8 (Latin-1 "café") in a header no one signs: the
    request is served, and the server answers it (no 500, no dropped connection)."""
    s3.put_object(Bucket=bucket, Key="latin", Body=b"x")
    path = uri_encode(f"/{bucket}/latin", keep_slash=True)
    wire = head_bytes(signed_lines(server, "HEAD", path))
    wire = wire[:-2] + b"User-Agent: caf\xe9\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(wire)
        status, headers, _ = HTTPReader(sock).read_final("HEAD")
    assert status == 200 and headers.get("content-length") == "1"


def test_many_headers_within_the_limit_are_fine(server, s3, bucket):
    meta = {f"m{i}": "v" * 20 for i in range(60)}
    s3.put_object(Bucket=bucket, Key="meta", Body=b"x", Metadata=meta)
    assert s3.head_object(Bucket=bucket, Key="meta")["Metadata"] == meta


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ],
    ids=["request-line", "header-line", "binary"],
)
def test_garbage_gets_a_400_xml_error_and_the_server_lives_on(server, s3, bucket, garbage):
    with connect(server) as sock:
        sock.sendall(garbage)
        status, headers, body = HTTPReader(sock).read_final()
        assert status == 400 and parse_error(body)["Code"] == "BadRequest", body
        assert headers.get("connection") == "close"
    s3.put_object(Bucket=bucket, Key="alive", Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key="alive")["Body"].read() == b"ok"


def test_chunked_transfer_encoding_body(server, s3, bucket):
    """A body in HTTP chunked transfer coding (no Content-Length) is decoded: DeleteObjects."""
    for key in ("c1", "c2"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    xml = b"<Delete><Quiet>true</Quiet><Object><Key>c1</Key></Object><Object><Key>c2</Key></Object></Delete>"
    path = f"/{bucket}"
    query = [("delete", "")]
    headers = sign(
        "POST",
        path,
        query,
        {"Host": server.raw.netloc, "Transfer-Encoding": "chunked"},
        server.creds,
        hashlib.sha256(xml).hexdigest(),
    ).headers
    pieces = [xml[i : i + 10] for i in range(0, len(xml), 10)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    with connect(server) as sock:
        head = [f"POST {path}?delete= HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(head_bytes(head) + body)
        status, _, response = HTTPReader(sock).read_final()
    assert status == 200, response
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_chunked_put_without_length_is_411(server, s3, bucket):
    """As S3: a PutObject body must come with its length (Content-Length or aws-chunked's
    x-amz-decoded-content-length)."""
    path = uri_encode(f"/{bucket}/chunked", keep_slash=True)
    lines = signed_lines(server, "PUT", path, {"Transfer-Encoding": "chunked"})
    with connect(server) as sock:
        sock.sendall(head_bytes(lines) + b"5\r\nhello\r\n0\r\n\r\n")
        status, _, response = HTTPReader(sock).read_final()
    assert status == 411 and parse_error(response)["Code"] == "MissingContentLength"


def test_early_error_skips_the_unread_body_and_keeps_the_connection(server, s3, bucket):
    """A PUT refused before its body is read (no such bucket): the next request on the same
    connection still works, so the server skipped the body it never read."""
    missing = unique_bucket_name("nobucket")
    body = b"z" * 300_000
    put_path = uri_encode(f"/{missing}/k", keep_slash=True)
    s3.put_object(Bucket=bucket, Key="after", Body=b"fine")
    get_path = uri_encode(f"/{bucket}/after", keep_slash=True)
    with connect(server) as sock:
        lines = signed_lines(server, "PUT", put_path, {"Content-Length": str(len(body))})
        sock.sendall(head_bytes(lines) + body)
        reader = HTTPReader(sock)
        status, _, error = reader.read_final()
        assert status == 404 and parse_error(error)["Code"] == "NoSuchBucket"
        sock.sendall(head_bytes(signed_lines(server, "GET", get_path)))
        status, _, got = reader.read_final()
        assert (status, got) == (200, b"fine")


def test_early_error_with_a_large_unread_body_reaches_the_client(server, s3, bucket):
    """A PUT refused before its body is read, with more body to come than the server skips: the
    connection ends, but only after the client could read the answer (a lingering close, not a
    reset that discards the answer)."""
    missing = unique_bucket_name("nobucket")
    size = 64 << 20
    put_path = uri_encode(f"/{missing}/k", keep_slash=True)
    with connect(server) as sock:
        lines = signed_lines(server, "PUT", put_path, {"Content-Length": str(size)})
        sock.sendall(head_bytes(lines))
        sent = 0
        chunk = b"z" * (1 << 20)
        with contextlib.suppress(OSError):
            while sent < 24 << 20:  # beyond what the server skips to keep a connection
                sock.sendall(chunk)
                sent += len(chunk)
        time.sleep(0.3)  # the server has answered and ended the connection meanwhile
        status, _, error = HTTPReader(sock).read_final()
    assert status == 404 and parse_error(error)["Code"] == "NoSuchBucket"


def test_truncated_body_stores_nothing(server, s3, bucket):
    path = uri_encode(f"/{bucket}/truncated", keep_slash=True)
    with connect(server) as sock:
        lines = signed_lines(server, "PUT", path, {"Content-Length": "100000"})
        sock.sendall(head_bytes(lines) + b"a" * 40_000)
        sock.shutdown(socket.SHUT_WR)  # the client gives up half-way
        try:
            status, _, body = HTTPReader(sock).read_final()
        except ConnectionError:
            status, body = 0, b""
    assert status in (0, 400), body
    if status == 400:
        assert parse_error(body)["Code"] == "IncompleteBody"
    with pytest.raises(ClientError, match=r"404|Not Found"):
        s3.head_object(Bucket=bucket, Key="truncated")


def test_expect_100_continue_then_body(server, s3, bucket):
    data = b"q" * 50_000
    path = uri_encode(f"/{bucket}/expect", keep_slash=True)
    headers = sign(
        "PUT",
        path,
        [],
        {"Host": server.raw.netloc, "Content-Length": str(len(data)), "Expect": "100-continue"},
        server.creds,
        hashlib.sha256(data).hexdigest(),
    ).headers
    with connect(server) as sock:
        sock.sendall(head_bytes([f"PUT {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]))
        reader = HTTPReader(sock)
        status, _ = reader.read_head()
        assert status == 100
        sock.sendall(data)
        status, _, _ = reader.read_final()
        assert status == 200
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == data


def test_http_1_0_request_is_answered_and_closed(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"v1.0")
    path = uri_encode(f"/{bucket}/old", keep_slash=True)
    lines = signed_lines(server, "GET", path)
    lines[0] = f"GET {path} HTTP/1.0"
    with connect(server) as sock:
        sock.sendall(head_bytes(lines))
        status, _, body = HTTPReader(sock).read_final()
        assert (status, body) == (200, b"v1.0")
        assert sock.recv(10) == b""  # closed after the answer


def test_response_header_injection_is_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="inj", Body=b"x")
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "inj", "ResponseContentType": "text/plain\r\nSet-Cookie: a=b"},
    )
    target = url.split(server.raw.netloc, 1)[1]
    with connect(server) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {server.raw.netloc}\r\n\r\n".encode())
        status, headers, body = HTTPReader(sock).read_final()
    assert "set-cookie" not in headers
    assert status == 400
    assert b"<Code>InvalidArgument</Code>" in body


def test_expect_100_continue_on_a_configuration_body(server, s3, bucket):
    """Any handler that reads the body tells the waiting client to send it (here DeleteObjects)."""
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    xml = b"<Delete><Object><Key>gone</Key></Object></Delete>"
    path = f"/{bucket}"
    headers = sign(
        "POST",
        path,
        [("delete", "")],
        {"Host": server.raw.netloc, "Content-Length": str(len(xml)), "Expect": "100-continue"},
        server.creds,
        hashlib.sha256(xml).hexdigest(),
    ).headers
    with connect(server) as sock:
        sock.sendall(
            head_bytes([f"POST {path}?delete= HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()])
        )
        reader = HTTPReader(sock)
        status, _ = reader.read_head()
        assert status == 100
        sock.sendall(xml)
        status, _, body = reader.read_final()
        assert status == 200 and b"<Deleted>" in body, body


def test_large_bodies_back_to_back_on_one_connection(server, s3, bucket):
    """A head and the start of a large body arriving in one read are not a too-large head."""
    data = bytes(range(256)) * 2400  # 600 KiB
    with connect(server) as sock:
        reader = HTTPReader(sock)
        for i in range(3):
            path = uri_encode(f"/{bucket}/big{i}", keep_slash=True)
            headers = sign(
                "PUT",
                path,
                [],
                {"Host": server.raw.netloc, "Content-Length": str(len(data))},
                server.creds,
                hashlib.sha256(data).hexdigest(),
            ).headers
            sock.sendall(
                head_bytes([f"PUT {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]) + data
            )
            status, _, body = reader.read_final()
            assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="big2")["Body"].read() == data


def test_refused_expect_100_continue_closes_the_connection(server, s3, bucket):
    """A PUT refused before "100 Continue" (no such bucket): the body will never come, so the
    answer says Connection: close and the connection ends instead of waiting for it."""
    path = uri_encode(f"/{unique_bucket_name('nobucket')}/k", keep_slash=True)
    lines = signed_lines(server, "PUT", path, {"Content-Length": "1000", "Expect": "100-continue"})
    with connect(server) as sock:
        sock.sendall(head_bytes(lines))
        reader = HTTPReader(sock)
        status, headers, body = reader.read_final()
        assert status == 404 and parse_error(body)["Code"] == "NoSuchBucket"
        assert headers.get("connection") == "close"
        assert sock.recv(10) == b""
