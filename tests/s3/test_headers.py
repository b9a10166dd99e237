"""Malformed request headers get precise S3 XML errors; x-amz-expected-bucket-owner is honoured."""

from __future__ import annotations

import base64
import hashlib
import socket

import pytest
from botocore.exceptions import ClientError
from conftest import unique_bucket_name
from s3util import EMPTY_SHA256, UNSIGNED, HTTPReader, amz_now, parse_error, sign, uri_encode

ROOT_ACCOUNT = "000000000000"
OTHER_ACCOUNT = "111122223333"


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def assert_absent(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert err(e)[1] == 404, f"{key} should not have been stored"


def raw_exchange(server, head_lines: list[str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    head = ("\r\n".join(head_lines) + "\r\n\r\n").encode("utf-8")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head + body)
        return HTTPReader(sock).read_final()


def signed_head(server, method: str, path: str, extra: dict[str, str]) -> list[str]:
    headers = sign(method, path, [], {"Host": server.raw.netloc, **extra}, server.creds, UNSIGNED).headers
    headers["Connection"] = "close"
    return [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]


# ---- Content-Length ----


@pytest.mark.parametrize("value", ["abc", "-1", "5x", "0x5"], ids=["letters", "negative", "suffix", "hex"])
def test_bad_content_length_is_an_xml_400(server, s3, bucket, value):
    path = uri_encode(f"/{bucket}/cl", keep_slash=True)
    lines = [*signed_head(server, "PUT", path, {}), f"Content-Length: {value}"]
    status, headers, body = raw_exchange(server, lines, b"hello")
    assert status == 400, (status, headers, body)
    error = parse_error(body)
    assert error["Code"] in ("BadRequest", "InvalidArgument", "MissingContentLength"), body
    assert error.get("RequestId"), body
    assert headers.get("x-amz-request-id")
    assert_absent(s3, bucket, "cl")
    assert server.raw.request("GET", f"/{bucket}").status == 200  # the server is fine


def test_bad_decoded_content_length_is_invalid_argument(server, s3, bucket):
    path = uri_encode(f"/{bucket}/dcl", keep_slash=True)
    body = b"5\r\nhello\r\n0\r\n\r\n"
    extra = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "five",
        "Content-Length": str(len(body)),
    }
    headers = sign(
        "PUT",
        path,
        [],
        {"Host": server.raw.netloc, **extra},
        server.creds,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    ).headers
    r = server.raw.send("PUT", path, headers, body)
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument", r.describe()
    assert_absent(s3, bucket, "dcl")


# ---- Content-MD5 ----

_BAD_MD5 = {
    "not-base64": "zz!",
    "too-short": base64.b64encode(b"x" * 15).decode(),
    "too-long": base64.b64encode(b"x" * 17).decode(),
    "hex-digest": hashlib.md5(b"x").hexdigest(),
    "empty": "",
}


@pytest.mark.parametrize("value", list(_BAD_MD5.values()), ids=list(_BAD_MD5))
def test_malformed_content_md5_put_object(raw, s3, bucket, value):
    r = raw.request("PUT", f"/{bucket}/md5", body=b"x", headers={"Content-MD5": value})
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidDigest", r.describe()
    assert_absent(s3, bucket, "md5")


def test_malformed_content_md5_upload_part_and_delete_objects(raw, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    r = raw.request(
        "PUT",
        f"/{bucket}/mp",
        query=[("partNumber", "1"), ("uploadId", upload)],
        body=b"part",
        headers={"Content-MD5": "zz"},
    )
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidDigest", r.describe()
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    xml = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    r = raw.request("POST", f"/{bucket}", query=[("delete", "")], body=xml, headers={"Content-MD5": "zz"})
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidDigest", r.describe()
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"


# ---- Expect ----


@pytest.mark.parametrize("value", ["foo", "200-ok", "100-continue, foo"])
def test_unsupported_expectation_is_417(server, s3, bucket, value):
    path = uri_encode(f"/{bucket}/exp", keep_slash=True)
    lines = signed_head(server, "PUT", path, {"Content-Length": "5", "Expect": value})
    status, headers, body = raw_exchange(server, lines, b"hello")
    assert status == 417, (status, headers, body)
    assert parse_error(body)["Code"] == "ExpectationFailed"
    assert_absent(s3, bucket, "exp")


def test_expect_100_continue_is_case_insensitive(server, s3, bucket):
    path = uri_encode(f"/{bucket}/exp-ok", keep_slash=True)
    lines = signed_head(server, "PUT", path, {"Content-Length": "5", "Expect": "100-Continue"})
    status, _, body = raw_exchange(server, lines, b"hello")
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="exp-ok")["Body"].read() == b"hello"


# ---- dates and the Authorization header ----


@pytest.mark.auth
@pytest.mark.parametrize("value", ["garbage", "20260101", "2026-01-01T00:00:00Z", "20261301T000000Z"])
def test_unparseable_x_amz_date_is_access_denied(server, bucket, value):
    # a well-formed credential scope (today), then the timestamp replaced by the unparseable value
    headers = sign("GET", f"/{bucket}", [], {"Host": server.raw.netloc}, server.creds, EMPTY_SHA256).headers
    headers["x-amz-date"] = value
    r = server.raw.send("GET", f"/{bucket}", headers)
    assert r.status == 403, r.describe()
    error = parse_error(r.body)
    assert error["Code"] == "AccessDenied", r.describe()
    assert "Date" in error["Message"] or "date" in error["Message"], r.describe()


@pytest.mark.auth
@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ("Bearer abcdef", "InvalidArgument"),
        ("Basic dXNlcjpwYXNz", "InvalidArgument"),
        ("garbage", "InvalidArgument"),
        ("AWS4-HMAC-SHA256", "AuthorizationHeaderMalformed"),
        ("AWS4-HMAC-SHA256 Credential", "AuthorizationHeaderMalformed"),
        ("AWS nocolon", "InvalidArgument"),
    ],
    ids=["bearer", "basic", "garbage", "v4-alone", "v4-no-equals", "v2-no-colon"],
)
def test_authorization_header_garbage(server, bucket, auth, code):
    headers = {
        "Host": server.raw.netloc,
        "x-amz-date": amz_now(),
        "x-amz-content-sha256": EMPTY_SHA256,
        "Authorization": auth,
    }
    r = server.raw.send("GET", f"/{bucket}", headers)
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] == code, r.describe()


# ---- x-amz-expected-bucket-owner ----


@pytest.mark.auth
def test_expected_bucket_owner_matching_is_allowed(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ExpectedBucketOwner=ROOT_ACCOUNT)
    assert s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner=ROOT_ACCOUNT)["Body"].read() == b"v"
    s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=ROOT_ACCOUNT)
    s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner=ROOT_ACCOUNT)
    s3.copy_object(
        Bucket=bucket,
        Key="k2",
        CopySource={"Bucket": bucket, "Key": "k"},
        ExpectedBucketOwner=ROOT_ACCOUNT,
        ExpectedSourceBucketOwner=ROOT_ACCOUNT,
    )
    s3.delete_object(Bucket=bucket, Key="k2", ExpectedBucketOwner=ROOT_ACCOUNT)


def _operations(bucket: str):
    """(name, call) pairs: every bucket and object operation with ExpectedBucketOwner=OTHER_ACCOUNT."""
    o = {"Bucket": bucket, "ExpectedBucketOwner": OTHER_ACCOUNT}
    return [
        ("HeadBucket", lambda s3: s3.head_bucket(**o)),
        ("GetBucketLocation", lambda s3: s3.get_bucket_location(**o)),
        ("ListObjects", lambda s3: s3.list_objects(**o)),
        ("ListObjectsV2", lambda s3: s3.list_objects_v2(**o)),
        ("ListObjectVersions", lambda s3: s3.list_object_versions(**o)),
        ("ListMultipartUploads", lambda s3: s3.list_multipart_uploads(**o)),
        ("PutObject", lambda s3: s3.put_object(Key="new", Body=b"x", **o)),
        ("GetObject", lambda s3: s3.get_object(Key="k", **o)),
        ("HeadObject", lambda s3: s3.head_object(Key="k", **o)),
        (
            "GetObjectAttributes",
            lambda s3: s3.get_object_attributes(Key="k", ObjectAttributes=["ETag"], **o),
        ),
        ("DeleteObject", lambda s3: s3.delete_object(Key="k", **o)),
        ("DeleteObjects", lambda s3: s3.delete_objects(Delete={"Objects": [{"Key": "k"}]}, **o)),
        ("CopyObject", lambda s3: s3.copy_object(Key="c", CopySource={"Bucket": bucket, "Key": "k"}, **o)),
        ("CreateMultipartUpload", lambda s3: s3.create_multipart_upload(Key="mp", **o)),
        ("DeleteBucket", lambda s3: s3.delete_bucket(**o)),
    ]


@pytest.mark.auth
def test_expected_bucket_owner_mismatch_is_denied_everywhere(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    failures = []
    for name, call in _operations(bucket):
        try:
            call(s3)
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            code = exc.response["Error"]["Code"]
            if status != 403 or code not in ("AccessDenied", "403"):
                failures.append((name, status, code))
        else:
            failures.append((name, "succeeded"))
    assert not failures, failures
    # nothing happened
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.auth
def test_upload_operations_check_the_expected_owner(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    o = {"Bucket": bucket, "Key": "mp", "UploadId": upload, "ExpectedBucketOwner": OTHER_ACCOUNT}
    for call in (
        lambda: s3.upload_part(PartNumber=1, Body=b"x", **o),
        lambda: s3.list_parts(**o),
        lambda: s3.abort_multipart_upload(**o),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e)[1] == 403
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)


@pytest.mark.auth
def test_expected_source_bucket_owner_on_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"v")
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket,
            Key="dst",
            CopySource={"Bucket": bucket, "Key": "src"},
            ExpectedSourceBucketOwner=OTHER_ACCOUNT,
        )
    assert err(e) == ("AccessDenied", 403)
    assert_absent(s3, bucket, "dst")


@pytest.mark.auth
def test_expected_bucket_owner_on_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=unique_bucket_name("gone"), ExpectedBucketOwner=ROOT_ACCOUNT)
    assert err(e) == ("NoSuchBucket", 404)
