"""minio-py (PyPI package minio) against Pails."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from tooltest import (
    MANY_KEYS,
    MANY_PREFIXES,
    MANY_TOP,
    MIB,
    api_total,
    content,
    list_keys,
    need,
    request_counts,
    requests_since,
)


@pytest.fixture
def mc(server):
    minio = need("minio")
    return minio.Minio(
        f"{server.host}:{server.port}",
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=server.region,
        secure=False,
    )


def test_multipart_fput_fget_list_stat_remove(mc, s3, bucket: str, tmp_path: Path) -> None:
    data = content("minio-20mib", 20 * MIB)
    src = tmp_path / "twenty.bin"
    src.write_bytes(data)

    result = mc.fput_object(bucket, "big/twenty.bin", str(src), part_size=5 * MIB)
    parts_md5 = b"".join(hashlib.md5(data[i : i + 5 * MIB]).digest() for i in range(0, len(data), 5 * MIB))
    assert result.etag.strip('"') == f"{hashlib.md5(parts_md5).hexdigest()}-4"

    dst = tmp_path / "back.bin"
    mc.fget_object(bucket, "big/twenty.bin", str(dst))
    assert dst.read_bytes() == data

    stat = mc.stat_object(bucket, "big/twenty.bin")
    assert stat.size == len(data)
    assert stat.etag.strip('"') == result.etag.strip('"')
    assert list_keys(s3, bucket) == {"big/twenty.bin": len(data)}

    mc.remove_object(bucket, "big/twenty.bin")
    assert list_keys(s3, bucket) == {}


def test_put_get_list_stat_remove(mc, bucket: str) -> None:
    minio = need("minio")
    objects = {
        "a.txt": b"alpha",
        "dir/b.bin": content("b", 100_000),
        "dir/sub/c.txt": b"",
        "dir/ünï 🎉.txt": b"unicode key",
    }
    for key, data in objects.items():
        mc.put_object(
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type="application/x-test",
            metadata={"x-amz-meta-origin": "minio-py"},
        )

    listed = {o.object_name: o.size for o in mc.list_objects(bucket, recursive=True)}
    assert listed == {k: len(v) for k, v in objects.items()}
    top = sorted((o.object_name, o.is_dir) for o in mc.list_objects(bucket))
    assert top == [("a.txt", False), ("dir/", True)]
    under = sorted(o.object_name for o in mc.list_objects(bucket, prefix="dir/", recursive=True))
    assert under == sorted(k for k in objects if k.startswith("dir/"))

    for key, data in objects.items():
        resp = mc.get_object(bucket, key)
        try:
            assert resp.read() == data
        finally:
            resp.close()
            resp.release_conn()

    stat = mc.stat_object(bucket, "dir/b.bin")
    assert stat.size == 100_000
    assert stat.etag.strip('"') == hashlib.md5(objects["dir/b.bin"]).hexdigest()
    assert stat.content_type == "application/x-test"
    assert stat.metadata.get("x-amz-meta-origin") == "minio-py"

    ranged = mc.get_object(bucket, "dir/b.bin", offset=10, length=20)
    try:
        assert ranged.read() == objects["dir/b.bin"][10:30]
    finally:
        ranged.close()
        ranged.release_conn()

    for key in objects:
        mc.remove_object(bucket, key)
    assert list(mc.list_objects(bucket, recursive=True)) == []
    with pytest.raises(minio.error.S3Error) as info:
        mc.stat_object(bucket, "a.txt")
    assert info.value.code in ("NoSuchKey", "ResponseCode404")  # HEAD has no body to carry a code


def test_bucket_exists_and_lifecycle(mc) -> None:
    from uuid import uuid4

    name = f"pt-minio-{uuid4().hex[:12]}"
    assert not mc.bucket_exists(name)
    mc.make_bucket(name)
    try:
        assert mc.bucket_exists(name)
        assert name in {b.name for b in mc.list_buckets()}
    finally:
        mc.remove_bucket(name)
    assert not mc.bucket_exists(name)


def test_copy_compose_and_presigned(mc, server, s3, bucket: str) -> None:
    commonconfig = need("minio.commonconfig", "minio")
    parts = [content(f"compose-{i}", 5 * MIB + i) for i in range(2)] + [b"tail"]
    for i, data in enumerate(parts):
        mc.put_object(bucket, f"src/{i}", io.BytesIO(data), len(data))

    mc.copy_object(bucket, "copy/0", commonconfig.CopySource(bucket, "src/0"))
    assert s3.get_object(Bucket=bucket, Key="copy/0")["Body"].read() == parts[0]

    before = request_counts(server)
    # Every source but the last >= 5 MiB: one UploadPartCopy per source, then CompleteMultipartUpload.
    mc.compose_object(bucket, "composed", [commonconfig.ComposeSource(bucket, f"src/{i}") for i in range(3)])
    sent = requests_since(server, before)
    if sent:
        assert api_total(sent, "UploadPartCopy") == 3, sent
    assert s3.get_object(Bucket=bucket, Key="composed")["Body"].read() == b"".join(parts)

    url = mc.presigned_put_object(bucket, "presigned.txt", expires=timedelta(minutes=5))
    req = urllib.request.Request(url, data=b"via presigned PUT", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    url = mc.presigned_get_object(bucket, "presigned.txt", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"via presigned PUT"


@pytest.mark.parametrize("api_v1", [False, True], ids=["ListObjectsV2", "ListObjects"])
def test_listing_past_one_page(mc, many_keys_bucket: str, api_v1: bool) -> None:
    every = [o.object_name for o in mc.list_objects(many_keys_bucket, recursive=True, use_api_v1=api_v1)]
    assert every == sorted(MANY_KEYS)
    top = [o.object_name for o in mc.list_objects(many_keys_bucket, prefix="many/", use_api_v1=api_v1)]
    assert top == sorted(MANY_TOP + MANY_PREFIXES)
    after = [
        o.object_name
        for o in mc.list_objects(
            many_keys_bucket, recursive=True, start_after="many/k-00999", use_api_v1=api_v1
        )
    ]
    assert after == sorted(k for k in MANY_KEYS if k > "many/k-00999")
