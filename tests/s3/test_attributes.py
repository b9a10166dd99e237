"""GetObjectAttributes: ETag, Checksum, ObjectParts, StorageClass, ObjectSize from the object's row."""

from __future__ import annotations

import hashlib

import pytest
from botocore.exceptions import ClientError
from breadth import skip_unless_supported
from s3util import parse_error, strip_ns, xml_root

ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
MIB = 1024 * 1024


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_single_part_object(s3, bucket):
    body = b"attributes" * 10
    put = s3.put_object(
        Bucket=bucket, Key="a", Body=body, ChecksumAlgorithm="SHA256", StorageClass="STANDARD_IA"
    )
    got = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=ALL)
    assert got["ETag"] == hashlib.md5(body).hexdigest()  # unquoted, as S3 answers here
    assert got["ObjectSize"] == len(body)
    assert got["StorageClass"] == "STANDARD_IA"
    assert got["Checksum"]["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert got["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert "ObjectParts" not in got  # not a multipart object
    assert got["LastModified"] == s3.head_object(Bucket=bucket, Key="a")["LastModified"]


def test_only_requested_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    got = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=["ObjectSize"])
    assert got["ObjectSize"] == 1
    assert not {"ETag", "StorageClass", "Checksum", "ObjectParts"} & set(got)


def test_multipart_object(s3, bucket, metadata_backend):
    skip_unless_supported(metadata_backend)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for number, data in ((1, b"a" * (5 * MIB)), (2, b"b" * 100)):
        part = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=data, ChecksumAlgorithm="CRC32"
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL, MaxParts=10)
    assert got["ETag"] == done["ETag"].strip('"') and got["ETag"].endswith("-2")
    assert got["ObjectSize"] == 5 * MIB + 100
    assert got["ObjectParts"]["TotalPartsCount"] == 2
    assert got["ObjectParts"]["MaxParts"] == 10
    assert got["ObjectParts"]["IsTruncated"] is False
    assert got["Checksum"]["ChecksumCRC32"] == done["ChecksumCRC32"]
    assert got["Checksum"]["ChecksumType"] == "COMPOSITE"


def test_errors(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket + "-gone", Key="a", ObjectAttributes=["ETag"])
    assert err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=["ETag"], VersionId="v123")
    assert err(e)[1] in (400, 404)
    r = raw.request(
        "GET", f"/{bucket}/a", query=[("attributes", "")], headers={"x-amz-object-attributes": "Bogus"}
    )
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument", r.describe()
    r = raw.request("GET", f"/{bucket}/a", query=[("attributes", "")])
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidRequest", r.describe()
    r = raw.request(
        "GET",
        f"/{bucket}/a",
        query=[("attributes", "")],
        headers={"x-amz-object-attributes": "ObjectParts", "x-amz-max-parts": "many"},
    )
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument", r.describe()
    r = raw.request("PUT", f"/{bucket}/a", query=[("attributes", "")], body=b"x")
    assert r.status == 405, r.describe()
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x"


def test_raw_document_and_null_version(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"xyz")
    r = raw.request(
        "GET",
        f"/{bucket}/a",
        query=[("attributes", ""), ("versionId", "null")],
        headers={"x-amz-object-attributes": "etag, objectsize"},
    )
    assert r.status == 200, r.describe()
    root = strip_ns(xml_root(r.body))
    assert root.tag == "GetObjectAttributesResponse"
    assert root.findtext("ETag") == hashlib.md5(b"xyz").hexdigest()
    assert root.findtext("ObjectSize") == "3"
    assert r.header("Last-Modified")
