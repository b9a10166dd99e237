"""Object and bucket tagging through boto3 (and raw requests for malformed bodies):
Put/Get/DeleteObjectTagging with and without versionId, x-amz-tagging on PutObject,
CreateMultipartUpload and CopyObject (tagging directive), x-amz-tagging-count, S3's limits and
errors, and Put/Get/DeleteBucketTagging."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from breadth import skip_unless_supported
from s3util import parse_error
from versioned import versioned_bucket


@pytest.fixture(autouse=True)
def _backend_supports_breadth(metadata_backend: str) -> None:
    skip_unless_supported(metadata_backend)


@pytest.fixture
def vbucket(s3) -> Iterator[str]:
    with versioned_bucket(s3, "tag") as name:
        yield name


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def tagset(tags: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def tags_of(resp) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resp["TagSet"]}


def tagging_xml(pairs: list[tuple[str, str]]) -> bytes:
    tags = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return f"<Tagging><TagSet>{tags}</TagSet></Tagging>".encode()


def test_object_tagging_round_trip(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    resp = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert resp["TagSet"] == [] and "VersionId" not in resp
    head = s3.head_object(Bucket=bucket, Key="k")
    assert "x-amz-tagging-count" not in head["ResponseMetadata"]["HTTPHeaders"]
    before = head["LastModified"]
    tags = {"project": "pails", "owner": "Zoë", "empty": "", "sym": "a+b-c=d._:/@ x"}
    resp = s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagset(tags))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200 and "VersionId" not in resp
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="k")) == tags
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["TagCount"] == 4 and got["Body"].read() == b"data"
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "4"
    assert head["LastModified"] == before  # tagging is not a write of the object
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagset({"only": "one"}))
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="k")) == {"only": "one"}
    resp = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")
    # An overwrite without x-amz-tagging has no tags.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagset({"a": "1"}))
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_object_tagging_missing(s3, bucket):
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="nope"),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="nope", Tagging=tagset({"a": "1"})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="nope"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket + "-gone", Key="k")
    assert err(e) == ("NoSuchBucket", 404)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="0" * 32),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="k", VersionId="0" * 32, Tagging=tagset({})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId="0" * 32),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("NoSuchVersion", 404)
    # The null version by id, on a never-versioned bucket.
    resp = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId="null", Tagging=tagset({"a": "1"}))
    assert resp["VersionId"] == "null"
    resp = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="null")
    assert resp["VersionId"] == "null" and tags_of(resp) == {"a": "1"}


def test_object_tagging_versions(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="k", Body=b"2")["VersionId"]
    resp = s3.get_object_tagging(Bucket=vbucket, Key="k")
    assert resp["VersionId"] == v2 and resp["TagSet"] == []
    resp = s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=v1)
    assert resp["VersionId"] == v1 and tags_of(resp) == {"v": "1"}
    resp = s3.put_object_tagging(Bucket=vbucket, Key="k", Tagging=tagset({"v": "2"}))
    assert resp["VersionId"] == v2
    resp = s3.put_object_tagging(Bucket=vbucket, Key="k", VersionId=v1, Tagging=tagset({"v": "one"}))
    assert resp["VersionId"] == v1
    assert tags_of(s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=v1)) == {"v": "one"}
    assert tags_of(s3.get_object_tagging(Bucket=vbucket, Key="k")) == {"v": "2"}
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)["TagCount"] == 1
    resp = s3.delete_object_tagging(Bucket=vbucket, Key="k", VersionId=v1)
    assert resp["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=v1)["TagSet"] == []
    assert tags_of(s3.get_object_tagging(Bucket=vbucket, Key="k")) == {"v": "2"}
    # Tagging made no new version.
    versions = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted([v1, v2])
    # A delete marker: NoSuchKey by key, MethodNotAllowed by its version id.
    marker = s3.delete_object(Bucket=vbucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=vbucket, Key="k")
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=vbucket, Key="k", Tagging=tagset({"a": "1"}))
    assert err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=marker)
    assert err(e) == ("MethodNotAllowed", 405)
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=vbucket, Key="k", VersionId=marker, Tagging=tagset({"a": "1"}))
    assert err(e) == ("MethodNotAllowed", 405)
    assert tags_of(s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=v2)) == {"v": "2"}


def test_tagging_header_on_put_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1&b=two%20words&c=&k%C3%BC=v%2Fw")
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="k")) == {
        "a": "1",
        "b": "two words",
        "c": "",
        "kü": "v/w",
    }
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 4
    for value, code in [
        ("&".join(f"k{i}=v" for i in range(11)), "InvalidTag"),
        ("aws%3Atag=1", "InvalidTag"),
        ("k=" + "v" * 257, "InvalidTag"),
        ("k" * 129 + "=v", "InvalidTag"),
        ("a=1&a=2", "InvalidArgument"),
    ]:
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging=value)
        assert err(e) == (code, 400), value
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad")
    assert err(e) == ("404", 404)


def test_tagging_on_multipart_upload(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="stage=upload&n=1")
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"part")[
        "ETag"
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="mp")) == {"stage": "upload", "n": "1"}
    assert (
        s3.head_object(Bucket=bucket, Key="mp")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"]
        == "2"
    )
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="mp2", Tagging="aws%3Ax=1")
    assert err(e) == ("InvalidTag", 400)


def test_tagging_directive_on_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="from=source")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="copied")) == {"from": "source"}
    s3.copy_object(
        Bucket=bucket,
        Key="copied2",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="COPY",
        Tagging="ignored=yes",
    )
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="copied2")) == {"from": "source"}
    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE",
        Tagging="new=tag",
    )
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="replaced")) == {"new": "tag"}
    s3.copy_object(
        Bucket=bucket, Key="bare", CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective="REPLACE"
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="bare")["TagSet"] == []
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="src")) == {"from": "source"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket,
            Key="bad",
            CopySource={"Bucket": bucket, "Key": "src"},
            TaggingDirective="REPLACE",
            Tagging="aws%3Ax=1",
        )
    assert err(e) == ("InvalidTag", 400)


def test_copy_of_a_version_copies_its_tags(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="src", Body=b"1", Tagging="v=1")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"2", Tagging="v=2")
    s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1})
    assert tags_of(s3.get_object_tagging(Bucket=vbucket, Key="dst")) == {"v": "1"}


def test_object_tag_limits_and_errors(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    ten = {f"k{i}": "v" for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagset(ten))
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="k")) == ten
    longest = {"k" * 128: "v" * 256, "é" * 128: "ü" * 256}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagset(longest))
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="k")) == longest
    bad = [
        [(f"k{i}", "v") for i in range(11)],
        [("k" * 129, "v")],
        [("k", "v" * 257)],
        [("dup", "1"), ("dup", "2")],
        [("aws:reserved", "1")],
        [("a#b", "v")],
    ]
    for pairs in bad:
        with pytest.raises(ClientError) as e:
            s3.put_object_tagging(
                Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in pairs]}
            )
        assert err(e) == ("InvalidTag", 400), pairs
        assert e.value.response["Error"]["Message"]
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="k")) == longest  # unchanged
    for body in [
        b"not xml",
        b"<Nope><TagSet/></Nope>",
        b"<Tagging></Tagging>",
        b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Other/></TagSet></Tagging>",
    ]:
        r = raw.request("PUT", f"/{bucket}/k", query=[("tagging", "")], body=body)
        assert r.status == 400 and parse_error(r.body)["Code"] == "MalformedXML", (body, r.describe())
    r = raw.request("PUT", f"/{bucket}/k", query=[("tagging", "")], body=tagging_xml([("", "v")]))
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidTag", r.describe()
    r = raw.request("PUT", f"/{bucket}/k", query=[("tagging", "")], body=tagging_xml([("a", "1")]))
    assert r.status == 200, r.describe()
    r = raw.request("POST", f"/{bucket}/k", query=[("tagging", "")], body=b"")
    assert r.status == 405 and parse_error(r.body)["Code"] == "MethodNotAllowed", r.describe()


def test_bucket_tagging(s3, raw, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert err(e) == ("NoSuchTagSet", 404)
    tags = {"team": "storage", "cost-center": "42", "note": "Zoë / @home"}
    resp = s3.put_bucket_tagging(Bucket=bucket, Tagging=tagset(tags))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3.get_bucket_tagging(Bucket=bucket)) == tags
    fifty = {f"k{i}": "v" for i in range(50)}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tagset(fifty))
    assert tags_of(s3.get_bucket_tagging(Bucket=bucket)) == fifty
    for pairs in ([(f"k{i}", "v") for i in range(51)], [("aws:x", "1")], [("a", "1"), ("a", "2")]):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_tagging(
                Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in pairs]}
            )
        assert err(e) == ("InvalidTag", 400)
    r = raw.request("PUT", f"/{bucket}", query=[("tagging", "")], body=b"<Tagging/>")
    assert r.status == 400 and parse_error(r.body)["Code"] == "MalformedXML", r.describe()
    assert tags_of(s3.get_bucket_tagging(Bucket=bucket)) == fifty
    resp = s3.delete_bucket_tagging(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert err(e) == ("NoSuchTagSet", 404)
    s3.delete_bucket_tagging(Bucket=bucket)  # nothing to delete: still 204
    # Bucket tags are not object tags.
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tagset({"b": "1"}))
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    for call in (
        lambda: s3.get_bucket_tagging(Bucket=bucket + "-gone"),
        lambda: s3.put_bucket_tagging(Bucket=bucket + "-gone", Tagging=tagset({"a": "1"})),
        lambda: s3.delete_bucket_tagging(Bucket=bucket + "-gone"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("NoSuchBucket", 404)
