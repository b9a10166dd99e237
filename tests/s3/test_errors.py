"""Error documents: S3 XML with Code/Message/Resource/RequestId, right status, request ids, HEAD bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from conftest import unique_bucket_name
from s3util import Creds, Raw, Response, parse_error, uri_encode


@dataclass
class Case:
    status: int
    code: str
    send: Callable[[Raw, str], Response]
    resource: Callable[[str], str] | None = None
    auth: bool = False


CASES = {
    "NoSuchBucket": Case(
        404, "NoSuchBucket", lambda r, b: r.request("GET", f"/{b}-missing"), lambda b: f"/{b}-missing"
    ),
    "NoSuchBucket-key": Case(404, "NoSuchBucket", lambda r, b: r.request("GET", f"/{b}-missing/k")),
    "NoSuchKey": Case(
        404, "NoSuchKey", lambda r, b: r.request("GET", f"/{b}/no/such key"), lambda b: f"/{b}/no/such key"
    ),
    "BucketNotEmpty": Case(
        409, "BucketNotEmpty", lambda r, b: r.request("DELETE", f"/{b}"), lambda b: f"/{b}"
    ),
    "BucketAlreadyOwnedByYou": Case(
        409, "BucketAlreadyOwnedByYou", lambda r, b: r.request("PUT", f"/{b}"), lambda b: f"/{b}"
    ),
    "InvalidBucketName": Case(400, "InvalidBucketName", lambda r, b: r.request("PUT", "/Bad_Bucket")),
    "InvalidRange": Case(
        416, "InvalidRange", lambda r, b: r.request("GET", f"/{b}/obj", headers={"Range": "bytes=999-"})
    ),
    "KeyTooLongError": Case(
        400, "KeyTooLongError", lambda r, b: r.request("PUT", f"/{b}/{'k' * 1100}", body=b"x")
    ),
    "InvalidDigest": Case(
        400,
        "InvalidDigest",
        lambda r, b: r.request("PUT", f"/{b}/d", body=b"x", headers={"Content-MD5": "zz"}),
    ),
    "SignatureDoesNotMatch": Case(
        403,
        "SignatureDoesNotMatch",
        lambda r, b: r.request("GET", f"/{b}/obj", creds=Creds(r.creds.access_key, "bad", r.creds.region)),
        auth=True,
    ),
    "InvalidAccessKeyId": Case(
        403,
        "InvalidAccessKeyId",
        lambda r, b: r.request("GET", f"/{b}/obj", creds=Creds("NOPE", "bad")),
        auth=True,
    ),
    "AccessDenied": Case(
        403, "AccessDenied", lambda r, b: r.request("GET", f"/{b}/obj", anonymous=True), auth=True
    ),
}


@pytest.fixture
def with_obj(s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"0123456789")
    return bucket


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.auth] if c.auth else []) for n, c in CASES.items()]
)
def test_error_document(raw, with_obj, name):
    case = CASES[name]
    r = case.send(raw, with_obj)
    assert r.status == case.status, r.describe()
    ctype = (r.header("Content-Type") or "").split(";")[0].strip()
    assert ctype in ("application/xml", "text/xml"), r.describe()
    e = parse_error(r.body)
    assert e.get("Code") == case.code, r.describe()
    assert e.get("Message"), r.describe()
    assert e.get("RequestId"), r.describe()
    assert "Resource" in e, r.describe()
    if case.resource is not None:
        expected = case.resource(with_obj)
        assert e["Resource"] in (expected, uri_encode(expected, keep_slash=True)), r.describe()
    request_id = r.header("x-amz-request-id")
    assert request_id, r.describe()
    assert e["RequestId"] == request_id


def test_request_ids_on_success_and_unique(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    ids = []
    for method, path, kwargs in [
        ("GET", "/", {}),
        ("GET", f"/{bucket}", {}),
        ("HEAD", f"/{bucket}", {}),
        ("PUT", f"/{bucket}/k2", {"body": b"x"}),
        ("GET", f"/{bucket}/k", {}),
        ("HEAD", f"/{bucket}/k", {}),
        ("DELETE", f"/{bucket}/k2", {}),
        ("GET", f"/{bucket}", {"query": [("location", "")]}),
    ]:
        r = raw.request(method, path, **kwargs)
        assert 200 <= r.status < 300, r.describe()
        rid = r.header("x-amz-request-id")
        assert rid, f"{method} {path}: no x-amz-request-id: {r.describe()}"
        ids.append(rid)
    assert len(set(ids)) == len(ids), ids


@pytest.mark.parametrize(
    "path_fn",
    [
        lambda b: f"/{b}/missing",
        lambda b: f"/{unique_bucket_name('missing')}/k",
        lambda b: f"/{unique_bucket_name()}",
    ],
    ids=["missing-key", "missing-bucket-key", "missing-bucket"],
)
def test_head_errors_have_no_body(raw, bucket, path_fn):
    r = raw.request("HEAD", path_fn(bucket))
    assert r.status == 404, r.describe()
    assert r.body == b""
    assert r.header("x-amz-request-id"), r.describe()


@pytest.mark.auth
def test_head_auth_error_has_no_body(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    r = raw.request("HEAD", f"/{bucket}/k", creds=Creds(raw.creds.access_key, "bad", raw.creds.region))
    assert r.status == 403, r.describe()
    assert r.body == b""
    assert r.header("x-amz-request-id")


def test_head_invalid_range_has_no_body(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    r = raw.request("HEAD", f"/{bucket}/k", headers={"Range": "bytes=50-"})
    assert r.status == 416, r.describe()
    assert r.body == b""


def test_unsupported_method_is_xml_error(raw, bucket):
    r = raw.request("PATCH", f"/{bucket}/k", body=b"x")
    assert r.status in (405, 501), r.describe()
    assert parse_error(r.body)["Code"] in ("MethodNotAllowed", "NotImplemented")
    assert r.header("x-amz-request-id")
