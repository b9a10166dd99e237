"""Authorization end to end: bucket policies, canned ACLs and ACL documents, PublicAccessBlock,
anonymous (unsigned) HTTP access, IP conditions, DeleteObjects per key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ServerInfo

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def unsigned_get(server: ServerInfo, path: str) -> tuple[int, bytes]:
    """A plain HTTP GET, no signature: what a browser or curl sends."""
    try:
        with urllib.request.urlopen(server.endpoint + path, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def anonymous_client(server: ServerInfo):  # -> S3Client
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        config=Config(
            signature_version=UNSIGNED, s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}
        ),
    )


def error_code(call: Any, *args: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def public_read(bucket: str, prefix: str = "", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
    }
    if condition:
        statement["Condition"] = condition
    return statement


def test_bucket_policy_round_trip_and_errors(s3, bucket: str) -> None:
    assert error_code(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    document = policy(public_read(bucket))
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(document)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    s3.delete_bucket_policy(Bucket=bucket)
    assert error_code(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False

    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{"Effect": "Allow"}]}))
    assert err.value.response["Error"]["Code"] == "MalformedPolicy"
    assert "Principal" in err.value.response["Error"]["Message"]
    big = policy(*[{**public_read(bucket), "Sid": f"S{i}", "Resource": f"arn:aws:s3:::{bucket}/{'x' * 300}{i}"}
                   for i in range(80)])  # fmt: skip
    assert len(big) > 20 * 1024
    code, status = error_code(s3.put_bucket_policy, Bucket=bucket, Policy=big)
    assert (code, status) == ("MalformedPolicy", 400)
    assert error_code(s3.get_bucket_policy, Bucket=bucket)[0] == "NoSuchBucketPolicy"  # nothing changed
    assert (
        error_code(s3.put_bucket_policy, Bucket="no-such-bucket-pails", Policy=document)[0] == "NoSuchBucket"
    )


def test_public_read_policy_serves_unsigned_gets(server: ServerInfo, s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="pub/hello.txt", Body=b"hello world")
    s3.put_object(Bucket=bucket, Key="private/secret.txt", Body=b"secret")
    assert unsigned_get(server, f"/{bucket}/pub/hello.txt")[0] == 403
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(public_read(bucket, "pub/")))
    assert unsigned_get(server, f"/{bucket}/pub/hello.txt") == (200, b"hello world")
    status, body = unsigned_get(server, f"/{bucket}/private/secret.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert unsigned_get(server, f"/{bucket}")[0] == 403  # listing was not granted
    anon = anonymous_client(server)
    assert error_code(anon.put_object, Bucket=bucket, Key="pub/new", Body=b"x") == ("AccessDenied", 403)
    # a missing bucket is NoSuchBucket for everyone (names are global); a missing key is
    # NoSuchKey only for callers that may list the bucket
    assert unsigned_get(server, "/no-such-bucket-pails/x")[0] == 404
    status, body = unsigned_get(server, f"/{bucket}/pub/missing")
    assert status == 403 and b"AccessDenied" in body
    listing = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(public_read(bucket, "pub/"), listing))
    status, body = unsigned_get(server, f"/{bucket}/pub/missing")
    assert status == 404 and b"NoSuchKey" in body
    assert error_code(s3.get_object, Bucket=bucket, Key="missing") == ("NoSuchKey", 404)  # the owner lists
    s3.delete_bucket_policy(Bucket=bucket)
    assert unsigned_get(server, f"/{bucket}/pub/hello.txt")[0] == 403


def test_deny_statements_bind_the_owner_but_not_policy_repair(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="locked/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="open/b", Body=b"b")
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:DeleteObject"],
        "Resource": f"arn:aws:s3:::{bucket}/locked/*",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(deny))
    assert error_code(s3.get_object, Bucket=bucket, Key="locked/a") == ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="open/b")["Body"].read() == b"b"
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "locked/a"}, {"Key": "open/b"}]})
    assert [d["Key"] for d in result.get("Deleted", [])] == ["open/b"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("locked/a", "AccessDenied")]
    s3.delete_bucket_policy(Bucket=bucket)  # the owner can always remove its policy
    assert s3.get_object(Bucket=bucket, Key="locked/a")["Body"].read() == b"a"


def test_source_ip_conditions(server: ServerInfo, s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    local = public_read(bucket, IpAddress={"aws:SourceIp": "127.0.0.1/32"})
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(local))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    assert unsigned_get(server, f"/{bucket}/k") == (200, b"v")
    s3.put_bucket_policy(
        Bucket=bucket, Policy=policy(public_read(bucket, IpAddress={"aws:SourceIp": "10.0.0.0/8"}))
    )
    assert unsigned_get(server, f"/{bucket}/k")[0] == 403
    # a Deny for everyone outside 10/8 also stops the owner
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(deny))
    assert error_code(s3.get_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)


def test_secure_transport_and_signature_keys(server: ServerInfo, s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    deny_plain_http = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(deny_plain_http))
    assert error_code(s3.get_object, Bucket=bucket, Key="k")[0] == "AccessDenied"
    deny_presigned = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {
            "StringEquals": {"s3:authType": "REST-QUERY-STRING", "s3:signatureversion": "AWS4-HMAC-SHA256"}
        },
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(deny_presigned))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 403


def test_canned_acls_on_buckets_and_objects(server: ServerInfo, s3) -> None:
    from conftest import empty_and_delete_bucket, unique_bucket_name

    name = unique_bucket_name()
    s3.create_bucket(Bucket=name, ACL="public-read")
    try:
        grants = s3.get_bucket_acl(Bucket=name)["Grants"]
        assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
        s3.put_object(Bucket=name, Key="obj-private", Body=b"p")
        s3.put_object(Bucket=name, Key="obj-public", Body=b"q", ACL="public-read")
        status, listing = unsigned_get(server, f"/{name}")
        assert status == 200 and b"obj-public" in listing  # bucket READ: list
        assert unsigned_get(server, f"/{name}/obj-private")[0] == 403  # bucket READ does not read objects
        assert unsigned_get(server, f"/{name}/obj-public") == (200, b"q")
        acl = s3.get_object_acl(Bucket=name, Key="obj-public")
        assert acl["Owner"]["ID"] == s3.list_buckets()["Owner"]["ID"]
        assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in acl["Grants"]
        s3.put_object_acl(Bucket=name, Key="obj-public", ACL="private")
        assert unsigned_get(server, f"/{name}/obj-public")[0] == 403
        s3.put_bucket_acl(Bucket=name, ACL="private")
        assert unsigned_get(server, f"/{name}")[0] == 403
        # public-read-write: anonymous writes
        s3.put_bucket_acl(Bucket=name, ACL="public-read-write")
        anonymous_client(server).put_object(Bucket=name, Key="dropbox", Body=b"anon")
        assert s3.get_object(Bucket=name, Key="dropbox")["Body"].read() == b"anon"
        assert error_code(s3.put_bucket_acl, Bucket=name, ACL="not-a-canned-acl")[0] == "InvalidArgument"
    finally:
        empty_and_delete_bucket(s3, name)


def test_acl_documents_and_grant_headers(server: ServerInfo, s3, bucket: str) -> None:
    owner = s3.list_buckets()["Owner"]
    s3.put_object(Bucket=bucket, Key="doc", Body=b"d")
    s3.put_object_acl(
        Bucket=bucket,
        Key="doc",
        AccessControlPolicy={
            "Owner": {"ID": owner["ID"]},
            "Grants": [
                {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
            ],
        },
    )
    assert unsigned_get(server, f"/{bucket}/doc") == (200, b"d")
    grants = s3.get_object_acl(Bucket=bucket, Key="doc")["Grants"]
    assert len(grants) == 2
    s3.put_object(Bucket=bucket, Key="hdr", Body=b"h", GrantRead=f'uri="{ALL_USERS}"')
    assert unsigned_get(server, f"/{bucket}/hdr") == (200, b"h")
    code, status = error_code(
        s3.put_object, Bucket=bucket, Key="both", Body=b"x", ACL="private", GrantRead=f'uri="{ALL_USERS}"'
    )
    assert (code, status) == ("InvalidRequest", 400)
    code, _ = error_code(
        s3.put_bucket_acl,
        Bucket=bucket,
        AccessControlPolicy={
            "Owner": {"ID": owner["ID"]},
            "Grants": [
                {"Grantee": {"Type": "Group", "URI": "http://example.com/nope"}, "Permission": "READ"}
            ],
        },
    )
    assert code == "MalformedACLError"
    # multipart uploads and copies take their own ACL
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ACL="public-read")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"m")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert unsigned_get(server, f"/{bucket}/mp") == (200, b"m")
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert unsigned_get(server, f"/{bucket}/mp-copy")[0] == 403  # a copy does not inherit the ACL
    s3.copy_object(
        Bucket=bucket, Key="mp-copy2", CopySource={"Bucket": bucket, "Key": "mp"}, ACL="public-read"
    )
    assert unsigned_get(server, f"/{bucket}/mp-copy2") == (200, b"m")


def test_public_access_block(server: ServerInfo, s3, bucket: str) -> None:
    assert error_code(s3.get_public_access_block, Bucket=bucket) == (
        "NoSuchPublicAccessBlockConfiguration",
        404,
    )
    s3.put_object(Bucket=bucket, Key="pub", Body=b"p", ACL="public-read")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(public_read(bucket, "policy/")))
    s3.put_object(Bucket=bucket, Key="policy/x", Body=b"x")
    assert unsigned_get(server, f"/{bucket}/pub")[0] == 200
    assert unsigned_get(server, f"/{bucket}/policy/x")[0] == 200

    def block(**flags: bool) -> None:
        config = {name: flags.get(name, False) for name in
                  ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}  # fmt: skip
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)

    block(IgnorePublicAcls=True)
    assert (
        s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["IgnorePublicAcls"]
        is True
    )
    assert unsigned_get(server, f"/{bucket}/pub")[0] == 403
    assert unsigned_get(server, f"/{bucket}/policy/x")[0] == 200
    block(RestrictPublicBuckets=True)
    assert unsigned_get(server, f"/{bucket}/pub")[0] == 200
    assert unsigned_get(server, f"/{bucket}/policy/x")[0] == 403
    assert s3.get_object(Bucket=bucket, Key="policy/x")["Body"].read() == b"x"  # the owner still reads
    block(BlockPublicAcls=True, BlockPublicPolicy=True)
    assert (
        error_code(s3.put_object, Bucket=bucket, Key="p2", Body=b"", ACL="public-read")[0] == "AccessDenied"
    )
    assert (
        error_code(s3.put_object_acl, Bucket=bucket, Key="pub", ACL="public-read-write")[0] == "AccessDenied"
    )
    assert error_code(s3.put_bucket_acl, Bucket=bucket, ACL="public-read")[0] == "AccessDenied"
    code, status = error_code(s3.put_bucket_policy, Bucket=bucket, Policy=policy(public_read(bucket)))
    assert (code, status) == ("AccessDenied", 403)
    pinned = public_read(bucket, IpAddress={"aws:SourceIp": "127.0.0.1/32"})
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(pinned))  # not public: accepted
    s3.put_object(Bucket=bucket, Key="p3", Body=b"", ACL="private")
    s3.delete_public_access_block(Bucket=bucket)
    assert error_code(s3.get_public_access_block, Bucket=bucket)[0] == "NoSuchPublicAccessBlockConfiguration"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(public_read(bucket)))


def test_anonymous_requests_without_grants_are_denied(server: ServerInfo, s3, bucket: str) -> None:
    anon = anonymous_client(server)
    assert error_code(anon.list_buckets)[0] == "AccessDenied"
    assert error_code(anon.create_bucket, Bucket="anon-made-this")[0] == "AccessDenied"
    assert error_code(anon.list_objects_v2, Bucket=bucket) == ("AccessDenied", 403)
    assert error_code(anon.get_bucket_policy, Bucket=bucket)[0] == "AccessDenied"
    result = anon.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    assert result["Errors"][0]["Code"] == "AccessDenied"


def test_existing_object_tag_conditions(server: ServerInfo, s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="visibility=public")
    s3.put_object(Bucket=bucket, Key="untagged", Body=b"u")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            public_read(bucket, StringEquals={"s3:ExistingObjectTag/visibility": "public"}),
        ),
    )
    assert unsigned_get(server, f"/{bucket}/tagged") == (200, b"t")
    assert unsigned_get(server, f"/{bucket}/untagged")[0] == 403
    s3.put_object_tagging(
        Bucket=bucket, Key="tagged", Tagging={"TagSet": [{"Key": "visibility", "Value": "team"}]}
    )
    assert unsigned_get(server, f"/{bucket}/tagged")[0] == 403
