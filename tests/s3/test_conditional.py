"""Conditional writes: If-None-Match: * and If-Match on PutObject and CompleteMultipartUpload."""

from __future__ import annotations

import os
import threading

import pytest
from botocore.exceptions import ClientError
from breadth import skip_unless_supported

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _backend_supports_breadth(metadata_backend: str) -> None:
    skip_unless_supported(metadata_backend)


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_put_if_none_match(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert err(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"third", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"third"


def test_put_if_match(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch='"abc"')
    assert err(e) == ("NoSuchKey", 404)
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch='"00000000000000000000000000000000"')
    assert err(e) == ("PreconditionFailed", 412)
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)["ETag"]
    with pytest.raises(ClientError) as e:  # the old ETag no longer matches
        s3.put_object(Bucket=bucket, Key="k", Body=b"v3", IfMatch=etag)
    assert err(e) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v3", IfMatch=new)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v3"


def test_racing_creators_exactly_one_wins(server, bucket):
    n = 20
    barrier = threading.Barrier(n)
    outcomes: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def racer(i: int) -> None:
        client = server.client()
        body = b"writer %d" % i
        barrier.wait()
        try:
            client.put_object(Bucket=bucket, Key="race", Body=body, IfNoneMatch="*")
            status = 200
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        with lock:
            outcomes.append((status, body))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] + [412] * (n - 1), statuses
    winner = next(body for status, body in outcomes if status == 200)
    s3 = server.client()
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == winner


def _upload(s3, bucket: str, key: str) -> tuple[str, list[dict]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=os.urandom(MiB))[
        "ETag"
    ]
    return upload_id, [{"PartNumber": 1, "ETag": etag}]


def test_complete_multipart_conditions(s3, bucket):
    upload_id, parts = _upload(s3, bucket, "k")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
    )
    current = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    upload_id, parts = _upload(s3, bucket, "k")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
        )
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch='"x"'
        )
    assert err(e) == ("PreconditionFailed", 412)
    # the failed completions left the upload in progress: it can still complete
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch=current
    )
    assert s3.head_object(Bucket=bucket, Key="k")["ETag"] == r["ETag"] != current
    upload_id, parts = _upload(s3, bucket, "absent")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="absent", UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch=current
        )
    assert err(e) == ("NoSuchKey", 404)
    s3.abort_multipart_upload(Bucket=bucket, Key="absent", UploadId=upload_id)


def test_racing_completions_exactly_one_wins(server, bucket):
    s3 = server.client()
    uploads = [_upload(s3, bucket, "race-mp") for _ in range(6)]
    barrier = threading.Barrier(len(uploads))
    statuses: list[int] = []

    def racer(upload_id: str, parts: list[dict]) -> None:
        client = server.client()
        barrier.wait()
        try:
            client.complete_multipart_upload(
                Bucket=bucket,
                Key="race-mp",
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
            statuses.append(200)
        except ClientError as exc:
            statuses.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])

    threads = [threading.Thread(target=racer, args=u) for u in uploads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [200] + [412] * (len(uploads) - 1)
    for upload_id, _ in uploads:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key="race-mp", UploadId=upload_id)
        except ClientError:
            pass
