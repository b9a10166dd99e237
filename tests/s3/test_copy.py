"""CopyObject and UploadPartCopy: directives, preconditions, encoded sources, shared chunks and GC."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from breadth import skip_unless_supported
from conftest import unique_bucket_name
from s3util import Raw

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _backend_supports_breadth(metadata_backend: str) -> None:
    skip_unless_supported(metadata_backend)


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def admin(server, method: str, path: str) -> dict:
    r = Raw(server.host, server.port, server.creds, timeout=120).request(method, path, body=b"")
    assert r.status == 200, r.describe()
    return json.loads(r.body)


def test_copy_within_and_across_buckets(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/plain", Metadata={"a": "1"})
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == etag
    assert isinstance(r["CopyObjectResult"]["LastModified"], datetime)
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"payload"
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"a": "1"}
    other = unique_bucket_name()
    s3.create_bucket(Bucket=other)
    try:
        s3.copy_object(Bucket=other, Key="x", CopySource=f"{bucket}/src")
        assert s3.get_object(Bucket=other, Key="x")["Body"].read() == b"payload"
    finally:
        s3.delete_object(Bucket=other, Key="x")
        s3.delete_bucket(Bucket=other)


def test_copy_source_encoding_and_version(s3, bucket):
    key = "dir/ünïcode key+plus?&=.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"odd"
    s3.copy_object(Bucket=bucket, Key="v", CopySource={"Bucket": bucket, "Key": key, "VersionId": "null"})
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"odd"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": "no-such-bucket-here", "Key": "k"})
    assert err(e) == ("NoSuchBucket", 404)


def test_metadata_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", ContentType="text/plain", Metadata={"old": "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"new": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["ContentType"] == "application/json" and head["Metadata"] == {"new": "2"}
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", Metadata={"ignored": "yes"})
    assert s3.head_object(Bucket=bucket, Key="dst2")["Metadata"] == {"old": "1"}


def test_copy_onto_itself_needs_replace(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same", Metadata={"v": "1"})
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self")
    assert err(e) == ("InvalidRequest", 400)
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource=f"{bucket}/self",
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
    )
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Body"].read() == b"same" and got["Metadata"] == {"v": "2"}


def test_copy_source_preconditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"cond")
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    ok = [
        {"CopySourceIfMatch": etag},
        {"CopySourceIfNoneMatch": '"nope"'},
        {"CopySourceIfModifiedSince": past},
        {"CopySourceIfUnmodifiedSince": future},
        {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past},  # If-Match wins
    ]
    failing = [
        {"CopySourceIfMatch": '"nope"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
        {"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": past},
    ]
    for conditions in ok:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", **conditions)
    for conditions in failing:
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", **conditions)
        assert err(e) == ("PreconditionFailed", 412), conditions


def test_upload_part_copy_with_ranges(s3, bucket):
    data = os.urandom(20 * MiB + 123)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    # aligned to the 8 MiB chunks (shared), unaligned (copied), then the tail
    ranges = [(0, 8 * MiB - 1), (3, 6 * MiB + 2), (16 * MiB, len(data) - 1)]
    parts = []
    for n, (first, last) in enumerate(ranges, 1):
        r = s3.upload_part_copy(
            Bucket=bucket,
            Key="assembled",
            UploadId=upload_id,
            PartNumber=n,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=f"bytes={first}-{last}",
        )
        etag = r["CopyPartResult"]["ETag"]
        assert etag == f'"{hashlib.md5(data[first : last + 1]).hexdigest()}"'
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    expected = b"".join(data[a : b + 1] for a, b in ranges)
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == expected
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    for bad in (f"bytes=0-{len(data)}", "bytes=5-1", "nonsense"):
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(
                Bucket=bucket,
                Key="bad",
                UploadId=upload_id,
                PartNumber=1,
                CopySource=f"{bucket}/src",
                CopySourceRange=bad,
            )
        assert err(e) == ("InvalidArgument", 400), bad
    s3.abort_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id)


def test_whole_object_part_copy_and_multipart_copy_of_itself(s3, bucket):
    data = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k", Metadata={"rewritten": "yes"})["UploadId"]
    parts = []
    for n in (1, 2):
        r = s3.upload_part_copy(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, CopySource=f"{bucket}/k"
        )
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == data + data and got["Metadata"] == {"rewritten": "yes"}


@pytest.mark.single_node
@pytest.mark.needs_process
@pytest.mark.timeout(180)
def test_copy_shares_chunks_and_survives_gc(start_server):
    srv = start_server()
    s3 = srv.client()
    bucket = unique_bucket_name()
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(20 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    small = b"small object"
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    before = admin(srv, "GET", "/_pails/admin/stats")
    for i in range(3):
        s3.copy_object(Bucket=bucket, Key=f"copy{i}", CopySource=f"{bucket}/src")
    s3.copy_object(Bucket=bucket, Key="small-copy", CopySource=f"{bucket}/small")
    s3.copy_object(Bucket=bucket, Key="copy0", CopySource=f"{bucket}/src")  # again onto a copy
    after = admin(srv, "GET", "/_pails/admin/stats")
    assert (after["chunks"], after["live_bytes"]) == (before["chunks"], before["live_bytes"])
    s3.delete_object(Bucket=bucket, Key="src")
    s3.delete_object(Bucket=bucket, Key="small")
    s3.delete_object(Bucket=bucket, Key="copy1")
    s3.put_object(Bucket=bucket, Key="copy2", Body=b"overwritten")
    admin(srv, "POST", "/_pails/admin/gc")
    assert s3.get_object(Bucket=bucket, Key="copy0")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="small-copy")["Body"].read() == small
    srv.stop()
    srv = start_server(reuse=srv)  # the first pass after a start sweeps orphans too
    s3 = srv.client()
    admin(srv, "POST", "/_pails/admin/gc")
    assert s3.get_object(Bucket=bucket, Key="copy0")["Body"].read() == data
    # the last reference goes: the chunks are freed
    s3.delete_object(Bucket=bucket, Key="copy0")
    s3.delete_object(Bucket=bucket, Key="small-copy")
    report = admin(srv, "POST", "/_pails/admin/gc")
    assert report["chunks_deleted"] >= 3, report
    stats = admin(srv, "GET", "/_pails/admin/stats")
    assert stats["live_bytes"] < 1 * MiB, stats
