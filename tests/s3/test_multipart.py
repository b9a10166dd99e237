"""Multipart uploads through boto3, s3transfer and the AWS CLI, plus the memory bound and GC."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from breadth import skip_unless_supported
from conftest import unique_bucket_name
from s3util import Raw, pattern_stream

MiB = 1024 * 1024
GiB = 1024 * MiB
PART = 5 * MiB


@pytest.fixture(autouse=True)
def _backend_supports_breadth(metadata_backend: str) -> None:
    skip_unless_supported(metadata_backend)


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def mp_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload(s3, bucket: str, key: str, parts: list[bytes], **create: object) -> tuple[str, list[dict]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        done.append({"PartNumber": number, "ETag": r["ETag"]})
    return upload_id, done


def admin(server, method: str, path: str) -> dict:
    r = Raw(server.host, server.port, server.creds, timeout=120).request(method, path, body=b"")
    assert r.status == 200, r.describe()
    return json.loads(r.body)


def test_round_trip_etag_and_metadata(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART), b"tail"]
    upload_id, done = upload(
        s3,
        bucket,
        "mp",
        parts,
        ContentType="text/x-test",
        Metadata={"color": "blue"},
        CacheControl="no-cache",
    )
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert r["ETag"] == mp_etag(parts)
    assert r["Key"] == "mp" and r["Bucket"] == bucket
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == mp_etag(parts)
    assert got["ContentType"] == "text/x-test"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLength"] == 2 * PART + 4
    ranged = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={PART - 3}-{PART + 2}")["Body"].read()
    assert ranged == parts[0][-3:] + parts[1][:3]
    # the upload is gone once complete
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert err(e) == ("NoSuchUpload", 404)


def test_reuploaded_part_replaces_the_old_one(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x" * PART)
    second = os.urandom(PART)
    e1 = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=second)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"end")["ETag"]
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, e1, PART), (2, e2, 3)]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="k",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == second + b"end"


def test_completion_errors(s3, bucket):
    upload_id, done = upload(s3, bucket, "k", [b"a" * 1024, b"b" * 1024, b"c"])
    cases = [
        ([done[1], done[0]], ("InvalidPartOrder", 400)),
        ([done[0], done[0]], ("InvalidPartOrder", 400)),
        ([{"PartNumber": 7, "ETag": done[0]["ETag"]}], ("InvalidPart", 400)),
        ([{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}], ("InvalidPart", 400)),
        (done, ("EntityTooSmall", 400)),
    ]
    for parts, expected in cases:
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        assert err(e) == expected, parts
    # the last part alone may be small: completing with part 3 only works
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": [done[2]]}
    )
    assert r["ETag"] == mp_etag([b"c"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"c"


def test_part_number_limits_and_unknown_upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for bad in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=bad, Body=b"x")
        assert err(e) == ("InvalidArgument", 400)
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=10000, Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="nope", PartNumber=1, Body=b"x")
    assert err(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="other-key", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert err(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId="nope",
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": "x"}]},
        )
    assert err(e) == ("NoSuchUpload", 404)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    assert err(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert err(e) == ("NoSuchUpload", 404)


def test_part_digests_are_verified(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    data = b"part body"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=data, ContentMD5=good)
    assert r["ETag"] == f'"{md5(data)}"'
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=data, ContentMD5=bad)
    assert err(e) == ("BadDigest", 400)
    crc = base64.b64encode(zlib.crc32(b"wrong").to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=data, ChecksumCRC32=crc)
    assert err(e) == ("BadDigest", 400) or err(e)[0] in ("InvalidRequest",)
    # the failed re-upload left part 1 as it was
    assert [p["ETag"] for p in s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]] == [
        f'"{md5(data)}"'
    ]


def test_checksum_algorithm_composite(s3, bucket):
    parts = [os.urandom(PART), b"end"]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket=bucket, Key="c", UploadId=upload_id, PartNumber=n, Body=data, ChecksumAlgorithm="CRC32"
        )
        assert r["ChecksumCRC32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="c", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    raw = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in done)
    assert r["ChecksumCRC32"] == base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode() + "-2"
    assert r["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == r["ChecksumCRC32"] and head["ChecksumType"] == "COMPOSITE"
    assert s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")["Body"].read() == b"".join(parts)


def b64_crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _upload_crc32_parts(s3, bucket: str, key: str, upload_id: str, parts: list[bytes]) -> list[dict]:
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, ChecksumCRC32=b64_crc32(data)
        )
        assert r["ChecksumCRC32"] == b64_crc32(data)
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    return done


def test_checksum_type_full_object(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART + 3), b"the end"]
    body = b"".join(parts)
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="f", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    assert created["ChecksumAlgorithm"] == "CRC32" and created["ChecksumType"] == "FULL_OBJECT"
    upload_id = created["UploadId"]
    done = _upload_crc32_parts(s3, bucket, "f", upload_id, parts)
    listed = s3.list_parts(Bucket=bucket, Key="f", UploadId=upload_id)
    assert listed["ChecksumAlgorithm"] == "CRC32" and listed.get("ChecksumType") == "FULL_OBJECT"
    r = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="f",
        UploadId=upload_id,
        MultipartUpload={"Parts": done},
        ChecksumCRC32=b64_crc32(body),
        ChecksumType="FULL_OBJECT",
    )
    assert r["ChecksumCRC32"] == b64_crc32(body) and r["ChecksumType"] == "FULL_OBJECT"
    assert r["ETag"] == mp_etag(parts)
    head = s3.head_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == b64_crc32(body) and head["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == b64_crc32(body) and got["ChecksumType"] == "FULL_OBJECT"
    assert got["Body"].read() == body  # botocore validates the full-object CRC32 as it reads
    attrs = s3.get_object_attributes(Bucket=bucket, Key="f", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC32": b64_crc32(body), "ChecksumType": "FULL_OBJECT"}


def test_full_object_checksum_mismatch_is_bad_digest(s3, bucket):
    parts = [os.urandom(PART), b"tail"]
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key="m", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    done = _upload_crc32_parts(s3, bucket, "m", upload_id, parts)
    mpu = {"Parts": done}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload=mpu, ChecksumCRC32=b64_crc32(b"nope")
        )
    assert err(exc) == ("BadDigest", 400)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload=mpu, ChecksumType="COMPOSITE"
        )
    assert err(exc) == ("BadDigest", 400)
    # nothing was committed: no object, the upload and its parts are still there
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="m")
    assert err(exc)[1] == 404
    assert len(s3.list_parts(Bucket=bucket, Key="m", UploadId=upload_id)["Parts"]) == 2
    r = s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload=mpu)
    assert r["ChecksumCRC32"] == b64_crc32(b"".join(parts)) and r["ChecksumType"] == "FULL_OBJECT"


def test_checksum_type_defaults_and_invalid_combinations(s3, bucket):
    r = s3.create_multipart_upload(Bucket=bucket, Key="d", ChecksumAlgorithm="CRC64NVME")
    assert r["ChecksumType"] == "FULL_OBJECT"
    r = s3.create_multipart_upload(Bucket=bucket, Key="d", ChecksumAlgorithm="CRC32C")
    assert r["ChecksumType"] == "COMPOSITE"
    for algorithm, kind in (("SHA256", "FULL_OBJECT"), ("SHA1", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE")):
        with pytest.raises(ClientError) as exc:
            s3.create_multipart_upload(Bucket=bucket, Key="d", ChecksumAlgorithm=algorithm, ChecksumType=kind)
        assert err(exc) == ("InvalidRequest", 400), (algorithm, kind)


def test_crc64nvme_full_object_by_default(s3, bucket):
    from awscrt import checksums as crt

    parts = [os.urandom(PART), os.urandom(1000)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="n", ChecksumAlgorithm="CRC64NVME")["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket=bucket, Key="n", UploadId=upload_id, PartNumber=n, Body=data, ChecksumAlgorithm="CRC64NVME"
        )
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC64NVME": r["ChecksumCRC64NVME"]})
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="n", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    whole = base64.b64encode(crt.crc64nvme(b"".join(parts)).to_bytes(8, "big")).decode()
    assert r["ChecksumCRC64NVME"] == whole and r["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="n", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == whole and head["ChecksumType"] == "FULL_OBJECT"


def test_list_parts_pagination(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for n in range(1, 8):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, Body=b"%d" % n)
    seen: list[int] = []
    marker = 0
    while True:
        r = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, MaxParts=3, PartNumberMarker=marker)
        seen += [p["PartNumber"] for p in r["Parts"]]
        assert r["MaxParts"] == 3
        if not r["IsTruncated"]:
            break
        marker = r["NextPartNumberMarker"]
    assert seen == list(range(1, 8))
    paginated = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="k", UploadId=upload_id, PaginationConfig={"PageSize": 2}
    )
    assert [p["PartNumber"] for page in paginated for p in page["Parts"]] == list(range(1, 8))
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def test_list_multipart_uploads(s3, bucket):
    ids: dict[str, list[str]] = {}
    for key in ("a/1", "a/2", "b", "b", "c/x/y", "d"):
        ids.setdefault(key, []).append(s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    r = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == [
        (k, i) for k in ("a/1", "a/2", "b", "c/x/y", "d") for i in ids[k]
    ]
    assert all("Initiated" in u for u in r["Uploads"])
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["b", "b", "d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2"]
    # pagination: max-uploads, then key-marker + upload-id-marker
    r = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3)
    assert r["IsTruncated"] and [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2", "b"]
    assert (r["NextKeyMarker"], r["NextUploadIdMarker"]) == ("b", ids["b"][0])
    r = s3.list_multipart_uploads(
        Bucket=bucket, KeyMarker=r["NextKeyMarker"], UploadIdMarker=r["NextUploadIdMarker"]
    )
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == [
        ("b", ids["b"][1]),
        ("c/x/y", ids["c/x/y"][0]),
        ("d", ids["d"][0]),
    ]
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")
    assert [u["Key"] for u in r["Uploads"]] == ["c/x/y", "d"]
    for key, upload_ids in ids.items():
        for upload_id in upload_ids:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_get_part_number_of_single_part_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="k", PartNumber=1)["Body"].read() == b"hello"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", PartNumber=2)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", PartNumber=2)
    assert err(e) == ("InvalidPartNumber", 416)


def test_s3transfer_upload_and_ranged_download(s3, bucket, tmp_path):
    src = tmp_path / "src.bin"
    data = os.urandom(23 * MiB + 17)
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "transfer", Config=config)
    head = s3.head_object(Bucket=bucket, Key="transfer")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-5"')
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "transfer", str(dst), Config=config)  # ranged GETs, 4 in flight
    assert dst.read_bytes() == data


@pytest.mark.needs_process
def test_aws_cli_cp_multipart(server, bucket, tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if not aws:
        pytest.skip("aws CLI not installed")
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        "[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    src = tmp_path / "twenty.bin"
    data = os.urandom(20 * MiB)
    src.write_bytes(data)
    base = [aws, "--endpoint-url", server.endpoint]
    subprocess.run([*base, "s3", "cp", str(src), f"s3://{bucket}/cli"], env=env, check=True, timeout=120)
    etag = server.client().head_object(Bucket=bucket, Key="cli")["ETag"]
    assert etag == mp_etag([data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)])
    back = tmp_path / "back.bin"
    subprocess.run([*base, "s3", "cp", f"s3://{bucket}/cli", str(back)], env=env, check=True, timeout=120)
    assert back.read_bytes() == data


@pytest.mark.single_node
@pytest.mark.needs_process
@pytest.mark.timeout(180)
def test_abort_and_unused_parts_are_freed(start_server):
    srv = start_server()
    s3 = srv.client()
    bucket = unique_bucket_name()
    s3.create_bucket(Bucket=bucket)
    before = admin(srv, "GET", "/_pails/admin/stats")
    upload_id, _ = upload(s3, bucket, "abandoned", [os.urandom(PART), os.urandom(PART)])
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["abandoned"]
    s3.abort_multipart_upload(Bucket=bucket, Key="abandoned", UploadId=upload_id)
    upload_id, done = upload(s3, bucket, "k", [os.urandom(PART), os.urandom(PART), os.urandom(PART)])
    s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": done[:2]}
    )
    # a part upload replaced mid-upload frees the old one too
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="r")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="r", UploadId=upload_id, PartNumber=1, Body=os.urandom(PART))
    s3.upload_part(Bucket=bucket, Key="r", UploadId=upload_id, PartNumber=1, Body=os.urandom(PART))
    report = admin(srv, "POST", "/_pails/admin/gc")
    assert report["orphans_deleted"] == 0, report
    after = admin(srv, "GET", "/_pails/admin/stats")
    # live: the 2 completed parts and the 1 pending part; freed: 2 aborted + 1 unused + 1 replaced
    assert after["live_bytes"] - before["live_bytes"] == pytest.approx(3 * PART, rel=0.01)
    assert len(s3.get_object(Bucket=bucket, Key="k")["Body"].read()) == 2 * PART
    # pending parts survive the orphan sweep (they are referenced)
    s3.upload_part(Bucket=bucket, Key="r", UploadId=upload_id, PartNumber=2, Body=b"x")
    parts = s3.list_parts(Bucket=bucket, Key="r", UploadId=upload_id)["Parts"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="r",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]},
    )
    assert s3.head_object(Bucket=bucket, Key="r")["ContentLength"] == PART + 1


@pytest.mark.needs_process
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.serial  # completion must take < 1 s (decision 0020)
def test_one_gib_completion_reads_no_data(start_server):
    """Completing writes metadata only: no chunk is written or read, and it takes milliseconds."""
    import time

    srv = start_server()
    s3 = srv.client()
    bucket = unique_bucket_name()
    s3.create_bucket(Bucket=bucket)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part = 64 * MiB
    block = bytes(range(256)) * (part // 256)

    def send(n: int) -> dict:
        r = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=n, Body=block)
        return {"PartNumber": n, "ETag": r["ETag"]}

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(send, range(1, GiB // part + 1)))
    before = admin(srv, "GET", "/_pails/admin/stats")
    started = time.perf_counter()
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    elapsed = time.perf_counter() - started
    after = admin(srv, "GET", "/_pails/admin/stats")
    assert after == before  # no chunk written, nothing freed, nothing read into new chunks
    assert r["ETag"] == mp_etag([block] * len(done))
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == GiB
    print(f"CompleteMultipartUpload of 1 GiB ({len(done)} parts): {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


@pytest.mark.single_node
@pytest.mark.needs_process
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.xdist_group(name="memory-bound")  # never two at once (decision 0020)
def test_two_gib_multipart_memory_bound(start_server):
    from test_durability import RssSampler

    srv = start_server()
    s3 = srv.client()
    bucket = unique_bucket_name()
    s3.create_bucket(Bucket=bucket)
    total, part = 2 * GiB, 64 * MiB
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="huge")["UploadId"]
    sampler = RssSampler(srv.pid)
    baseline = sampler.rss()
    sampler.start()
    lock = threading.Lock()
    stream = pattern_stream(total, block=MiB, seed=b"mp-huge")
    digests: dict[int, bytes] = {}

    def send(n: int) -> dict:
        # Parts come from one generator, in order of request; 3 are in flight at a time.
        with lock:
            body = b"".join(next(stream) for _ in range(part // MiB))
        digests[n] = hashlib.md5(body).digest()
        r = s3.upload_part(Bucket=bucket, Key="huge", UploadId=upload_id, PartNumber=n, Body=body)
        del body
        return {"PartNumber": n, "ETag": r["ETag"]}

    try:
        with ThreadPoolExecutor(3) as pool:
            done = list(pool.map(send, range(1, total // part + 1)))
        r = s3.complete_multipart_upload(
            Bucket=bucket, Key="huge", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    finally:
        peak = sampler.stop()
    expected = hashlib.md5(b"".join(digests[n] for n in sorted(digests))).hexdigest()
    assert r["ETag"] == f'"{expected}-{len(done)}"'
    assert s3.head_object(Bucket=bucket, Key="huge")["ContentLength"] == total
    print(f"server RSS: baseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB")
    assert peak < 300 * MiB, f"RSS peaked at {peak / MiB:.0f} MiB (baseline {baseline / MiB:.0f})"


def complete(s3, bucket: str, key: str, parts: list[bytes]) -> dict:
    upload_id, done = upload(s3, bucket, key, parts)
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )


def test_get_and_head_by_part_number(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART + 7), b"the last part"]
    etag = complete(s3, bucket, "mp", parts)["ETag"]
    total = sum(len(p) for p in parts)
    got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert got["Body"].read() == parts[1]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["PartsCount"] == 3
    assert got["ETag"] == etag
    assert got["ContentRange"] == f"bytes {PART}-{2 * PART + 6}/{total}"
    got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert got["Body"].read() == parts[2]
    assert got["ContentRange"] == f"bytes {total - len(parts[2])}-{total - 1}/{total}"
    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=1)
    assert head["ContentLength"] == PART
    assert head["PartsCount"] == 3
    assert head["ETag"] == etag
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentRange"] == f"bytes 0-{PART - 1}/{total}"


def test_part_number_errors(s3, bucket):
    complete(s3, bucket, "mp", [os.urandom(PART), b"tail"])
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert err(e) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-9")
    assert err(e) == ("InvalidRequest", 400)


def test_copy_keeps_the_parts_layout(s3, bucket):
    parts = [os.urandom(PART), b"tail"]
    complete(s3, bucket, "mp", parts)
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    got = s3.get_object(Bucket=bucket, Key="copy", PartNumber=2)
    assert got["Body"].read() == b"tail"
    assert got["PartsCount"] == 2


def test_attributes_list_parts(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART), b"tail"]
    complete(s3, bucket, "mp", parts)
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"])
    listed = got["ObjectParts"]
    assert listed["TotalPartsCount"] == 3 and listed["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, PART), (2, PART), (3, 4)]
    got = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=1, PartNumberMarker=1
    )
    listed = got["ObjectParts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(2, PART)]
    assert listed["IsTruncated"] is True and listed["NextPartNumberMarker"] == 2
    got = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], PartNumberMarker=2
    )
    listed = got["ObjectParts"]
    assert [p["PartNumber"] for p in listed["Parts"]] == [3]
    assert listed["IsTruncated"] is False
