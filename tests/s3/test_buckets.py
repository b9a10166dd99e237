"""Bucket API: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, addressing styles."""

from __future__ import annotations

import datetime as dt
import socket
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import empty_and_delete_bucket, unique_bucket_name
from s3util import parse_error, strip_ns, xml_root


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_create_list_head_delete(s3):
    name = unique_bucket_name()
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    resp = s3.create_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    try:
        listed = s3.list_buckets()
        entry = [b for b in listed["Buckets"] if b["Name"] == name]
        assert len(entry) == 1, listed["Buckets"]
        created = entry[0]["CreationDate"]
        assert before <= created <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5), created
        assert "Owner" in listed and listed["Owner"].get("ID"), listed.get("Owner")
        head = s3.head_bucket(Bucket=name)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert err(e) == ("404", 404)


def test_list_buckets_sorted(s3):
    names = sorted(unique_bucket_name("ls") for _ in range(3))
    for n in reversed(names):
        s3.create_bucket(Bucket=n)
    try:
        listed = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert [n for n in listed if n in names] == names
        assert listed == sorted(listed)
    finally:
        for n in names:
            s3.delete_bucket(Bucket=n)


def test_create_existing_bucket_owned_by_you(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket)
    assert err(e) == ("BucketAlreadyOwnedByYou", 409)


@pytest.mark.parametrize(
    "name",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "MyBucket",  # upper case
        "under_score",  # underscore
        "-startdash",
        "enddash-",
        ".startdot",
        "enddot.",
        "double..dot",
        "192.168.5.4",  # IP address form
    ],
)
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert err(e) == ("InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["xn--punycode1", "sthree-bucket", "bucket-s3alias", "bucket--ol-s3"])
def test_invalid_bucket_names_reserved_affixes(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert err(e) == ("InvalidBucketName", 400)


@pytest.mark.parametrize(
    "make",
    [
        lambda u: "abc",
        lambda u: ("e" + u + "a" * 63)[:63],
        lambda u: "1numeric-start-" + u[:8],
        lambda u: "dots.and-dashes." + u[:8],
    ],
    ids=["3-chars", "63-chars", "digit-start", "dots-dashes"],
)
def test_valid_bucket_name_edges(s3, make):
    name = make(uuid.uuid4().hex)
    empty_and_delete_bucket(s3, name)  # "abc" may exist from an earlier run against an external server
    s3.create_bucket(Bucket=name)
    try:
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        s3.delete_bucket(Bucket=name)


def test_delete_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert err(e) == ("BucketNotEmpty", 409)
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert err(e)[1] == 404


def test_delete_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=unique_bucket_name("missing"))
    assert err(e) == ("NoSuchBucket", 404)


def test_head_missing_bucket_has_no_body(raw):
    r = raw.request("HEAD", f"/{unique_bucket_name('missing')}")
    assert r.status == 404, r.describe()
    assert r.body == b""
    assert r.header("x-amz-request-id")


def test_get_bucket_location_default(s3, bucket):
    resp = s3.get_bucket_location(Bucket=bucket)
    # us-east-1 is reported as an empty LocationConstraint
    assert resp.get("LocationConstraint") in (None, ""), resp


def test_get_bucket_location_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_location(Bucket=unique_bucket_name("missing"))
    assert err(e) == ("NoSuchBucket", 404)


def test_get_bucket_location_raw_xml(raw, bucket):
    r = raw.request("GET", f"/{bucket}", query=[("location", "")])
    assert r.status == 200, r.describe()
    root = strip_ns(xml_root(r.body))
    assert root.tag == "LocationConstraint"
    assert (root.text or "") == ""


@pytest.mark.needs_process
def test_location_constraint_on_other_region(start_server):
    srv = start_server(args=["--region", "eu-west-1"], region="eu-west-1")
    client = srv.client()
    name = unique_bucket_name()
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert client.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    other = unique_bucket_name()
    with pytest.raises(ClientError) as e:
        client.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    code, status = err(e)
    assert status == 400
    assert code in ("IllegalLocationConstraintException", "InvalidLocationConstraint"), code
    assert other not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_new_bucket_is_usable_immediately(s3):
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    try:
        s3.put_object(Bucket=name, Key="x", Body=b"1")
        assert s3.get_object(Bucket=name, Key="x")["Body"].read() == b"1"
    finally:
        empty_and_delete_bucket(s3, name)


def test_create_bucket_malformed_xml(raw):
    name = unique_bucket_name()
    r = raw.request("PUT", f"/{name}", body=b"<CreateBucketConfiguration><Loc")
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] == "MalformedXML"


# ---- virtual-hosted style ----


def vhost(server, bucket: str) -> str:
    return f"{bucket}.localhost:{server.port}"


def test_virtual_hosted_raw(server, raw, s3, bucket):
    host = vhost(server, bucket)
    r = raw.request("PUT", "/dir/obj.txt", body=b"virtual!", host_header=host)
    assert r.status == 200, r.describe()
    assert s3.get_object(Bucket=bucket, Key="dir/obj.txt")["Body"].read() == b"virtual!"
    r = raw.request("GET", "/dir/obj.txt", host_header=host)
    assert r.status == 200, r.describe()
    assert r.body == b"virtual!"
    r = raw.request("GET", "/", query=[("list-type", "2")], host_header=host)
    assert r.status == 200, r.describe()
    root = strip_ns(xml_root(r.body))
    assert root.findtext("Name") == bucket
    assert [c.findtext("Key") for c in root.findall("Contents")] == ["dir/obj.txt"]
    r = raw.request("HEAD", "/", host_header=host)
    assert r.status == 200, r.describe()
    r = raw.request("GET", "/missing-key", host_header=host)
    assert r.status == 404, r.describe()
    assert parse_error(r.body)["Code"] == "NoSuchKey"


def test_virtual_hosted_missing_bucket(server, raw):
    r = raw.request("GET", "/key", host_header=vhost(server, unique_bucket_name("missing")))
    assert r.status == 404, r.describe()
    assert parse_error(r.body)["Code"] == "NoSuchBucket"


def test_virtual_hosted_boto3(server, bucket, monkeypatch):
    """boto3 with addressing_style=virtual against http://localhost:PORT (bucket.localhost resolved to 127.0.0.1)."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    client = server.client(s3={"addressing_style": "virtual"}, endpoint_url=f"http://localhost:{server.port}")
    seen: list[str] = []
    client.meta.events.register("before-send.s3.*", lambda request, **kw: seen.append(request.url))
    client.put_object(Bucket=bucket, Key="v/key", Body=b"vh")
    assert client.get_object(Bucket=bucket, Key="v/key")["Body"].read() == b"vh"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["v/key"]
    assert seen and all(u.startswith(f"http://{bucket}.localhost:{server.port}/") for u in seen), seen


def test_recreated_bucket_starts_empty(s3):
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="ghost", Body=b"boo")
    s3.delete_object(Bucket=name, Key="ghost")
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    try:
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=name, Key="ghost")
        assert err(e) == ("NoSuchKey", 404)
    finally:
        empty_and_delete_bucket(s3, name)
