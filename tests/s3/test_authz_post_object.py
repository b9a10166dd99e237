"""Browser uploads: an HTML form's POST (multipart/form-data) with a SigV4-signed POST policy,
submitted by a real HTTP client (aiohttp's FormData); the fields come from boto3's
generate_presigned_post, as a web page would embed them."""

from __future__ import annotations

import asyncio
import base64
import json
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest
from conftest import ServerInfo


def submit(
    url: str, fields: dict[str, str], data: bytes, filename: str = "upload.bin", file_type: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    async def go() -> tuple[int, dict[str, str], bytes]:
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("file", data, filename=filename, content_type=file_type or "application/octet-stream")
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=form, allow_redirects=False) as resp,
        ):
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()

    return asyncio.run(go())


def presigned(s3, bucket: str, key: str, fields: dict[str, str] | None = None,
              conditions: list[Any] | None = None, expires: int = 300) -> dict[str, Any]:  # fmt: skip
    return s3.generate_presigned_post(
        Bucket=bucket, Key=key, Fields=fields or {}, Conditions=conditions or [], ExpiresIn=expires
    )


TAGGING = "<Tagging><TagSet><Tag><Key>source</Key><Value>browser</Value></Tag></TagSet></Tagging>"


def code_of(body: bytes) -> str:
    return ET.fromstring(body).findtext("Code") or ""


def test_form_upload_stores_the_file(s3, bucket: str) -> None:
    post = presigned(
        s3,
        bucket,
        "uploads/${filename}",
        fields={"Content-Type": "text/plain", "x-amz-meta-origin": "form", "tagging": TAGGING},
        conditions=[
            ["starts-with", "$key", "uploads/"],
            ["content-length-range", 1, 1024 * 1024],
            {"Content-Type": "text/plain"},
            {"x-amz-meta-origin": "form"},
            {"tagging": TAGGING},
        ],
    )
    status, headers, _ = submit(post["url"], post["fields"], b"hello from a browser", filename="note.txt")
    assert status == 204
    assert headers["etag"].strip('"')
    head = s3.head_object(Bucket=bucket, Key="uploads/note.txt")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"origin": "form"}
    assert s3.get_object_tagging(Bucket=bucket, Key="uploads/note.txt")["TagSet"] == [
        {"Key": "source", "Value": "browser"}
    ]
    assert s3.get_object(Bucket=bucket, Key="uploads/note.txt")["Body"].read() == b"hello from a browser"


def test_success_action_status_and_redirect(s3, bucket: str) -> None:
    post = presigned(s3, bucket, "a.txt", fields={"success_action_status": "201"},
                     conditions=[{"success_action_status": "201"}])  # fmt: skip
    status, _, body = submit(post["url"], post["fields"], b"abc")
    assert status == 201
    root = ET.fromstring(body)
    assert root.tag.endswith("PostResponse")
    assert [child.tag.split("}")[-1] for child in root] == ["Location", "Bucket", "Key", "ETag"]
    post = presigned(s3, bucket, "b.txt", fields={"success_action_status": "200"},
                     conditions=[{"success_action_status": "200"}])  # fmt: skip
    assert submit(post["url"], post["fields"], b"abc")[0] == 200
    redirect = "http://example.com/done?from=form"
    post = presigned(s3, bucket, "c.txt", fields={"success_action_redirect": redirect},
                     conditions=[{"success_action_redirect": redirect}])  # fmt: skip
    status, headers, _ = submit(post["url"], post["fields"], b"abc")
    assert status == 303
    assert headers["location"].startswith(redirect + "&") and "key=c.txt" in headers["location"]


def test_large_file_is_streamed(s3, bucket: str) -> None:
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB
    post = presigned(s3, bucket, "big.bin", conditions=[["content-length-range", 0, 20 * 1024 * 1024]])
    assert submit(post["url"], post["fields"], data)[0] == 204
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == len(data)


@pytest.mark.parametrize(
    ("change", "status", "code", "message"),
    [
        ({"key": "elsewhere/x"}, 403, "AccessDenied", "Policy Condition failed"),
        ({"extra-field": "1"}, 403, "AccessDenied", "Extra input fields: extra-field"),
        ({"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch", ""),
        ({"policy": base64.b64encode(b"not json").decode()}, 403, "SignatureDoesNotMatch", ""),
    ],
)
def test_policy_violations(
    s3, bucket: str, change: dict[str, str], status: int, code: str, message: str
) -> None:
    post = presigned(s3, bucket, "uploads/x", conditions=[["starts-with", "$key", "uploads/"]])
    fields = {**post["fields"], **change}
    got_status, _, body = submit(post["url"], fields, b"data")
    assert (got_status, code_of(body)) == (status, code)
    assert message in ET.fromstring(body).findtext("Message", "")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_size_limits(s3, bucket: str) -> None:
    post = presigned(s3, bucket, "sized", conditions=[["content-length-range", 10, 100]])
    status, _, body = submit(post["url"], post["fields"], b"x" * 101)
    assert (status, code_of(body)) == (400, "EntityTooLarge")
    status, _, body = submit(post["url"], post["fields"], b"x" * 9)
    assert (status, code_of(body)) == (400, "EntityTooSmall")
    assert submit(post["url"], post["fields"], b"x" * 50)[0] == 204


def test_expired_policy_and_missing_fields(s3, bucket: str) -> None:
    post = presigned(s3, bucket, "late", expires=-10)
    status, _, body = submit(post["url"], post["fields"], b"x")
    assert (status, code_of(body)) == (403, "AccessDenied")
    assert "expired" in ET.fromstring(body).findtext("Message", "")
    post = presigned(s3, bucket, "nokey")
    fields = {k: v for k, v in post["fields"].items() if k != "key"}
    status, _, body = submit(post["url"], fields, b"x")
    assert (status, code_of(body)) == (400, "InvalidArgument")


def test_anonymous_form_needs_a_public_write_grant(server: ServerInfo, s3, bucket: str) -> None:
    url = f"{server.endpoint}/{bucket}"
    status, _, body = submit(url, {"key": "anon.txt"}, b"x")
    assert (status, code_of(body)) == (403, "AccessDenied")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
                               "Resource": f"arn:aws:s3:::{bucket}/inbox/*",
                               "Condition": {"StringEquals": {"s3:authType": "POST"}}}],
            }
        ),
    )  # fmt: skip
    assert submit(url, {"key": "inbox/anon.txt"}, b"x")[0] == 204
    assert submit(url, {"key": "other/anon.txt"}, b"x")[0] == 403
    assert s3.get_object(Bucket=bucket, Key="inbox/anon.txt")["Body"].read() == b"x"


def test_signer_needs_put_permission(s3, bucket: str) -> None:
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                               "Resource": f"arn:aws:s3:::{bucket}/denied/*"}],
            }
        ),
    )  # fmt: skip
    post = presigned(s3, bucket, "denied/x")
    status, _, body = submit(post["url"], post["fields"], b"x")
    assert (status, code_of(body)) == (403, "AccessDenied")
