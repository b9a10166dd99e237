"""Versioning through boto3, raw requests and the AWS CLI: bucket configuration, version ids on
every write, GET/HEAD/DELETE by version, delete markers, Suspended buckets and the null version,
ListObjectVersions, DeleteObjects and CopyObject with versions."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from breadth import skip_unless_supported
from clienv import AWS, aws_cli_env
from conftest import unique_bucket_name
from s3util import parse_error, strip_ns, xml_root
from versioned import versioned_bucket

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _backend_supports_breadth(metadata_backend: str) -> None:
    skip_unless_supported(metadata_backend)


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def headers_of(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, str]:
    return exc.value.response["ResponseMetadata"]["HTTPHeaders"]


@pytest.fixture
def vbucket(s3) -> Iterator[str]:
    with versioned_bucket(s3, "ver") as name:
        yield name


def test_versioning_configuration(s3, raw, bucket):
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in resp and "MFADelete" not in resp  # never versioned: empty configuration
    r = raw.request("GET", f"/{bucket}", query=[("versioning", "")])
    root = strip_ns(xml_root(r.body))
    assert r.status == 200 and root.tag == "VersioningConfiguration" and len(root) == 0
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    for body in [
        b"not xml",
        b"<Nope><Status>Enabled</Status></Nope>",
        b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
        b"<VersioningConfiguration></VersioningConfiguration>",
    ]:
        r = raw.request("PUT", f"/{bucket}", query=[("versioning", "")], body=body)
        assert r.status == 400 and parse_error(r.body)["Code"] == "MalformedXML", (body, r.describe())
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_versioning(Bucket=bucket + "-gone")
    assert err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket + "-gone", VersioningConfiguration={"Status": "Enabled"})
    assert err(e) == ("NoSuchBucket", 404)


def test_every_write_gets_a_version_and_old_ones_stay_readable(s3, vbucket):
    first = s3.put_object(Bucket=vbucket, Key="k", Body=b"one")
    second = s3.put_object(Bucket=vbucket, Key="k", Body=b"two!")
    v1, v2 = first["VersionId"], second["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"two!" and got["VersionId"] == v2
    old = s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)
    assert old["Body"].read() == b"one" and old["VersionId"] == v1
    head = s3.head_object(Bucket=vbucket, Key="k", VersionId=v1)
    assert head["ContentLength"] == 3 and head["VersionId"] == v1
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=v1, Range="bytes=1-1")["Body"].read() == b"n"
    for bad in ["0" * 32, "null"]:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=vbucket, Key="k", VersionId=bad)
        assert err(e) == ("NoSuchVersion", 404)
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=vbucket, Key="k", VersionId=bad)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # An id Pails could never have issued is a malformed argument, not a missing version.
    for malformed in ["not-a-version", "0" * 31, "Z" * 32]:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=vbucket, Key="k", VersionId=malformed)
        assert err(e) == ("InvalidArgument", 400)
    listed = s3.list_objects_v2(Bucket=vbucket)
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("k", 4)]


def test_delete_markers(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"data")["VersionId"]
    deleted = s3.delete_object(Bucket=vbucket, Key="k")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker not in (v1, "null")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k")
    assert err(e) == ("NoSuchKey", 404)
    assert headers_of(e)["x-amz-delete-marker"] == "true"
    assert headers_of(e)["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=vbucket, Key="k")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert headers_of(e)["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert err(e) == ("MethodNotAllowed", 405)
    assert headers_of(e)["x-amz-delete-marker"] == "true"
    assert "last-modified" in headers_of(e)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert s3.list_objects_v2(Bucket=vbucket)["KeyCount"] == 0
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)["Body"].read() == b"data"
    # Deleting the marker itself brings the object back.
    undone = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert undone["DeleteMarker"] is True and undone["VersionId"] == marker
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"data"


def test_deleting_a_version_promotes_the_next_newest(s3, vbucket):
    ids = [s3.put_object(Bucket=vbucket, Key="k", Body=str(i).encode())["VersionId"] for i in range(3)]
    gone = s3.delete_object(Bucket=vbucket, Key="k", VersionId=ids[2])
    assert gone["VersionId"] == ids[2] and "DeleteMarker" not in gone
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"1" and got["VersionId"] == ids[1]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=ids[2])
    assert err(e) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=ids[0])  # not the latest: nothing moves
    assert s3.get_object(Bucket=vbucket, Key="k")["VersionId"] == ids[1]
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=ids[1])
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k")
    assert err(e) == ("NoSuchKey", 404)
    assert "x-amz-delete-marker" not in headers_of(e)
    assert "Versions" not in s3.list_object_versions(Bucket=vbucket)


def test_suspended_writes_replace_the_null_version(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")  # the null version
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"versioned")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 2")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"suspended 2" and got.get("VersionId", "null") == "null"
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"], v["Size"]) for v in versions] == [
        ("null", True, len(b"suspended 2")),
        (v1, False, len(b"versioned")),
    ]
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] == "null"
    resp = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in resp["Versions"]] == [v1]
    assert [(m["VersionId"], m["IsLatest"]) for m in resp["DeleteMarkers"]] == [("null", True)]
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"versioned"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)


def test_list_object_versions(s3, raw, vbucket):
    ids: dict[str, list[str]] = {}
    for key in ["a", "dir/x", "dir/y", "sp ace", "z"]:
        ids[key] = [s3.put_object(Bucket=vbucket, Key=key, Body=b"v")["VersionId"] for _ in range(2)]
    marker = s3.delete_object(Bucket=vbucket, Key="z")["VersionId"]
    resp = s3.list_object_versions(Bucket=vbucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in resp["Versions"]] == [
        (key, vid, i == 0 and key != "z") for key in ids for i, vid in enumerate(reversed(ids[key]))
    ]
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in resp["DeleteMarkers"]] == [("z", marker, True)]
    assert resp["IsTruncated"] is False and all(v["ETag"].startswith('"') for v in resp["Versions"])
    # prefix + delimiter
    resp = s3.list_object_versions(Bucket=vbucket, Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir/"]
    assert "dir/x" not in {v["Key"] for v in resp["Versions"]}
    resp = s3.list_object_versions(Bucket=vbucket, Prefix="dir/")
    assert [(v["Key"], v["VersionId"]) for v in resp["Versions"]] == [
        ("dir/x", ids["dir/x"][1]),
        ("dir/x", ids["dir/x"][0]),
        ("dir/y", ids["dir/y"][1]),
        ("dir/y", ids["dir/y"][0]),
    ]
    # Pages of three, following NextKeyMarker / NextVersionIdMarker, can end inside a key.
    seen: list[tuple[str, str]] = []
    kwargs: dict[str, str] = {}
    for _ in range(20):
        page = s3.list_object_versions(Bucket=vbucket, MaxKeys=3, **kwargs)
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        assert len(entries) <= 3
        seen.extend((v["Key"], v["VersionId"]) for v in entries)
        if not page["IsTruncated"]:
            break
        kwargs = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert sorted(seen) == sorted([(k, v) for k in ids for v in ids[k]] + [("z", marker)])
    assert len(seen) == 11
    # key-marker alone skips the whole key; with a version-id-marker, the older versions follow.
    resp = s3.list_object_versions(Bucket=vbucket, KeyMarker="a")
    assert resp["Versions"][0]["Key"] == "dir/x"
    resp = s3.list_object_versions(Bucket=vbucket, KeyMarker="a", VersionIdMarker=ids["a"][1])
    assert [(v["Key"], v["VersionId"]) for v in resp["Versions"][:2]] == [
        ("a", ids["a"][0]),
        ("dir/x", ids["dir/x"][1]),
    ]
    # encoding-type=url
    r = raw.request(
        "GET", f"/{vbucket}", query=[("versions", ""), ("encoding-type", "url"), ("prefix", "sp")]
    )
    root = strip_ns(xml_root(r.body))
    assert r.status == 200 and [v.findtext("Key") for v in root.findall("Version")] == ["sp+ace", "sp+ace"]
    assert root.findtext("EncodingType") == "url"
    r = raw.request(
        "GET", f"/{vbucket}", query=[("versions", ""), ("key-marker", "a"), ("version-id-marker", "bogus")]
    )
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument"


def test_delete_objects_with_versions(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="a", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="a", Body=b"2")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="b", Body=b"b")
    resp = s3.delete_objects(
        Bucket=vbucket,
        Delete={"Objects": [{"Key": "a", "VersionId": v2}, {"Key": "b"}, {"Key": "c", "VersionId": "x"}]},
    )
    deleted = {d["Key"]: d for d in resp["Deleted"]}
    assert deleted["a"] == {"Key": "a", "VersionId": v2}
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"]
    assert "VersionId" not in deleted["b"]
    assert [(e["Key"], e["Code"]) for e in resp["Errors"]] == [("c", "NoSuchVersion")]
    assert s3.get_object(Bucket=vbucket, Key="a")["VersionId"] == v1
    b_marker = deleted["b"]["DeleteMarkerVersionId"]
    resp = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [{"Key": "b", "VersionId": b_marker}]})
    assert resp["Deleted"] == [
        {"Key": "b", "VersionId": b_marker, "DeleteMarker": True, "DeleteMarkerVersionId": b_marker}
    ]
    assert s3.get_object(Bucket=vbucket, Key="b")["Body"].read() == b"b"


def test_copy_from_a_version(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"new")
    resp = s3.copy_object(
        Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1}
    )
    assert resp["CopySourceVersionId"] == v1 and resp["VersionId"] not in (v1, "null")
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"old"
    # Restoring an old version onto its own key is a copy like any other.
    restored = s3.copy_object(
        Bucket=vbucket, Key="src", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1}
    )
    assert s3.get_object(Bucket=vbucket, Key="src")["VersionId"] == restored["VersionId"]
    assert s3.get_object(Bucket=vbucket, Key="src")["Body"].read() == b"old"
    marker = s3.delete_object(Bucket=vbucket, Key="src")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=vbucket, Key="x", CopySource={"Bucket": vbucket, "Key": "src"})
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=vbucket, Key="x", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": marker}
        )
    assert err(e) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=vbucket, Key="x", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": "0" * 32}
        )
    assert err(e) == ("NoSuchVersion", 404)
    # The old version survives deleting the copy's source version (shared chunks are counted).
    s3.delete_object(Bucket=vbucket, Key="src", VersionId=v1)
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"old"


def test_multipart_completion_creates_a_version(s3, vbucket):
    ids = []
    for body in (b"a" * (5 * MiB), b"b" * (5 * MiB)):
        upload = s3.create_multipart_upload(Bucket=vbucket, Key="mp")["UploadId"]
        part = s3.upload_part(Bucket=vbucket, Key="mp", UploadId=upload, PartNumber=1, Body=body)
        done = s3.complete_multipart_upload(
            Bucket=vbucket,
            Key="mp",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        ids.append(done["VersionId"])
    assert ids[0] != ids[1]
    assert s3.get_object(Bucket=vbucket, Key="mp", VersionId=ids[0], Range="bytes=0-0")["Body"].read() == b"a"
    assert s3.get_object(Bucket=vbucket, Key="mp")["VersionId"] == ids[1]


def test_object_versions_delete_empties_a_versioned_bucket(server, s3):
    name = unique_bucket_name("ver")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=name, Key=f"k{i % 2}", Body=b"x")
    s3.delete_object(Bucket=name, Key="k0")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert err(e) == ("BucketNotEmpty", 409)
    resource = boto3.resource(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    resource.Bucket(name).object_versions.delete()
    assert s3.list_object_versions(Bucket=name).get("Versions") is None
    s3.delete_bucket(Bucket=name)


def test_aws_cli_list_object_versions(server, s3, vbucket, tmp_path):
    if not AWS:
        pytest.skip("aws CLI not installed")
    ids = [s3.put_object(Bucket=vbucket, Key="k", Body=b"x")["VersionId"] for _ in range(3)]
    marker = s3.delete_object(Bucket=vbucket, Key="k")["VersionId"]
    env = aws_cli_env(server, tmp_path)
    cmd = [AWS, "--endpoint-url", server.endpoint, "s3api", "list-object-versions", "--bucket", vbucket]
    proc = subprocess.run([*cmd, "--page-size", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [v["VersionId"] for v in out["Versions"]] == list(reversed(ids))
    assert [(m["VersionId"], m["IsLatest"]) for m in out["DeleteMarkers"]] == [(marker, True)]
