"""ListObjectVersions on never-versioned buckets: every object is one version, "null", the latest."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from clienv import AWS, aws_cli_env
from s3util import parse_error, strip_ns, xml_root

KEYS = ["a", "b/1", "b/2", "c d", "c/x/1", "d+e", "z"]


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def filled(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_every_object_is_a_null_latest_version(s3, filled):
    resp = s3.list_object_versions(Bucket=filled)
    versions = resp["Versions"]
    assert [v["Key"] for v in versions] == KEYS
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in versions)
    head = s3.head_object(Bucket=filled, Key="a")
    first = versions[0]
    assert first["ETag"] == head["ETag"] and first["Size"] == 1 and first["StorageClass"] == "STANDARD"
    assert first["LastModified"].replace(microsecond=0) == head["LastModified"]  # HTTP dates: seconds
    assert first["Owner"]["ID"]
    assert "DeleteMarkers" not in resp and resp["IsTruncated"] is False
    assert "NextKeyMarker" not in resp


def test_prefix_delimiter_and_markers(s3, filled):
    resp = s3.list_object_versions(Bucket=filled, Delimiter="/")
    assert [v["Key"] for v in resp["Versions"]] == ["a", "c d", "d+e", "z"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["b/", "c/"]
    resp = s3.list_object_versions(Bucket=filled, Prefix="c/", Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["c/x/"] and "Versions" not in resp
    resp = s3.list_object_versions(Bucket=filled, KeyMarker="b/2")
    assert [v["Key"] for v in resp["Versions"]] == KEYS[3:]
    resp = s3.list_object_versions(Bucket=filled, KeyMarker="b/1", VersionIdMarker="null")
    assert [v["Key"] for v in resp["Versions"]] == KEYS[2:]


def test_pagination_with_max_keys(s3, filled):
    seen: list[str] = []
    kwargs: dict[str, str] = {}
    for _ in range(10):
        resp = s3.list_object_versions(Bucket=filled, MaxKeys=3, **kwargs)
        seen += [v["Key"] for v in resp.get("Versions", [])]
        if not resp["IsTruncated"]:
            break
        assert resp["NextKeyMarker"] == seen[-1] and resp["NextVersionIdMarker"] == "null"
        kwargs = {"KeyMarker": resp["NextKeyMarker"], "VersionIdMarker": resp["NextVersionIdMarker"]}
    assert seen == KEYS
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=filled, Delimiter="/", PaginationConfig={"PageSize": 2}
    )
    keys, prefixes = [], []
    for page in pages:
        keys += [v["Key"] for v in page.get("Versions", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == ["a", "c d", "d+e", "z"] and prefixes == ["b/", "c/"]


def test_encoding_type_url(raw, filled):
    r = raw.request("GET", f"/{filled}", query=[("versions", ""), ("encoding-type", "url"), ("prefix", "c ")])
    assert r.status == 200, r.describe()
    root = strip_ns(xml_root(r.body))
    assert root.tag == "ListVersionsResult"
    assert root.findtext("EncodingType") == "url"
    assert root.findtext("Prefix") == "c+"
    assert [v.findtext("Key") for v in root.findall("Version")] == ["c+d"]


def test_invalid_markers_and_arguments(raw, s3, filled):
    for query, code in [
        ([("version-id-marker", "null")], "InvalidArgument"),  # without a key marker
        ([("key-marker", "a"), ("version-id-marker", "3HL4kqtJlcpXroDTDmJ")], "InvalidArgument"),
        ([("max-keys", "-1")], "InvalidArgument"),
        ([("encoding-type", "base64")], "InvalidArgument"),
    ]:
        r = raw.request("GET", f"/{filled}", query=[("versions", ""), *query])
        assert r.status == 400 and parse_error(r.body)["Code"] == code, (query, r.describe())
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=filled + "-gone")
    assert err(e) == ("NoSuchBucket", 404)
    r = raw.request("PUT", f"/{filled}", query=[("versions", "")])
    assert r.status == 501, r.describe()  # never mistaken for CreateBucket


def test_boto3_object_versions_delete_empties_the_bucket(server, s3, filled):
    resource = boto3.resource(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    result = resource.Bucket(filled).object_versions.delete()
    deleted = [d for batch in result for d in batch.get("Deleted", [])]
    assert sorted(d["Key"] for d in deleted) == sorted(KEYS)
    assert all(d.get("VersionId") == "null" for d in deleted)
    assert s3.list_objects_v2(Bucket=filled)["KeyCount"] == 0
    s3.delete_bucket(Bucket=filled)
    s3.create_bucket(Bucket=filled)  # for the fixture's cleanup


def test_delete_objects_with_other_version_ids(s3, filled):
    resp = s3.delete_objects(
        Bucket=filled,
        Delete={
            "Objects": [{"Key": "a", "VersionId": "null"}, {"Key": "z", "VersionId": "3HL4kqtJlcpXroDTDmJ"}]
        },
    )
    assert resp["Deleted"] == [{"Key": "a", "VersionId": "null"}]
    assert resp["Errors"][0]["Key"] == "z" and resp["Errors"][0]["Code"] == "NoSuchVersion"
    assert s3.get_object(Bucket=filled, Key="z")["Body"].read() == b"z"


def test_aws_cli_list_object_versions(server, filled, tmp_path):
    if not AWS:
        pytest.skip("aws CLI not installed")
    env = aws_cli_env(server, tmp_path)
    cmd = [AWS, "--endpoint-url", server.endpoint, "s3api", "list-object-versions", "--bucket", filled]
    proc = subprocess.run([*cmd, "--page-size", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [(v["Key"], v["VersionId"]) for v in out["Versions"]] == [(k, "null") for k in KEYS]
