"""S3 operation -> IAM action, resource and condition keys (pails.iam.actions), for every operation."""

from __future__ import annotations

import pytest

from pails.api.app import HANDLERS
from pails.iam.actions import OPERATIONS, PER_KEY, delete_access, required

B = "arn:aws:s3:::b"
K = "arn:aws:s3:::b/k/x"

# operation, bucket-level?, action without versionId, action with versionId (None: same)
CASES = [
    ("ListBuckets", None, "s3:ListAllMyBuckets", None),
    ("CreateBucket", True, "s3:CreateBucket", None),
    ("HeadBucket", True, "s3:ListBucket", None),
    ("DeleteBucket", True, "s3:DeleteBucket", None),
    ("GetBucketLocation", True, "s3:GetBucketLocation", None),
    ("ListObjects", True, "s3:ListBucket", None),
    ("ListObjectsV2", True, "s3:ListBucket", None),
    ("ListObjectVersions", True, "s3:ListBucketVersions", None),
    ("ListMultipartUploads", True, "s3:ListBucketMultipartUploads", None),
    ("GetBucketVersioning", True, "s3:GetBucketVersioning", None),
    ("PutBucketVersioning", True, "s3:PutBucketVersioning", None),
    ("GetBucketTagging", True, "s3:GetBucketTagging", None),
    ("PutBucketTagging", True, "s3:PutBucketTagging", None),
    ("DeleteBucketTagging", True, "s3:PutBucketTagging", None),
    ("GetBucketPolicy", True, "s3:GetBucketPolicy", None),
    ("PutBucketPolicy", True, "s3:PutBucketPolicy", None),
    ("DeleteBucketPolicy", True, "s3:DeleteBucketPolicy", None),
    ("GetBucketPolicyStatus", True, "s3:GetBucketPolicyStatus", None),
    ("GetBucketAcl", True, "s3:GetBucketAcl", None),
    ("PutBucketAcl", True, "s3:PutBucketAcl", None),
    ("GetPublicAccessBlock", True, "s3:GetBucketPublicAccessBlock", None),
    ("PutPublicAccessBlock", True, "s3:PutBucketPublicAccessBlock", None),
    ("DeletePublicAccessBlock", True, "s3:PutBucketPublicAccessBlock", None),
    ("PutObject", False, "s3:PutObject", None),
    ("GetObject", False, "s3:GetObject", "s3:GetObjectVersion"),
    ("HeadObject", False, "s3:GetObject", "s3:GetObjectVersion"),
    ("DeleteObject", False, "s3:DeleteObject", "s3:DeleteObjectVersion"),
    ("CopyObject", False, "s3:PutObject", None),
    ("CreateMultipartUpload", False, "s3:PutObject", None),
    ("UploadPart", False, "s3:PutObject", None),
    ("UploadPartCopy", False, "s3:PutObject", None),
    ("CompleteMultipartUpload", False, "s3:PutObject", None),
    ("AbortMultipartUpload", False, "s3:AbortMultipartUpload", None),
    ("ListParts", False, "s3:ListMultipartUploadParts", None),
    ("GetObjectAttributes", False, "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    ("GetObjectTagging", False, "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("PutObjectTagging", False, "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    ("DeleteObjectTagging", False, "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    ("GetObjectAcl", False, "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    ("PutObjectAcl", False, "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
]


def test_every_served_operation_is_mapped() -> None:
    mapped = {case[0] for case in CASES} | PER_KEY
    assert set(HANDLERS) <= mapped
    assert set(HANDLERS) <= OPERATIONS


@pytest.mark.parametrize(("operation", "bucket_level", "action", "versioned"), CASES)
def test_operation_mapping(
    operation: str, bucket_level: bool | None, action: str, versioned: str | None
) -> None:
    key = None if bucket_level else "k/x"
    (access,) = required(operation, "b", key, {}, {})
    assert access.action == action
    if bucket_level is None:
        assert access.resource == "arn:aws:s3:::*"
    elif bucket_level:
        assert access.resource == B and not access.on_object
    else:
        assert access.resource == K and access.on_object and access.key == "k/x"
    if not bucket_level and bucket_level is not None:
        (with_version,) = required(operation, "b", key, {"versionId": "v1"}, {})
        assert with_version.action == (versioned or action)
        assert with_version.keys["s3:versionid"] == ("v1",)


def test_list_condition_keys() -> None:
    for operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        (access,) = required(
            operation, "b", None, {"prefix": "home/a/", "delimiter": "/", "max-keys": "7"}, {}
        )
        assert access.keys == {"s3:prefix": ("home/a/",), "s3:delimiter": ("/",), "s3:max-keys": ("7",)}
    (access,) = required("ListObjectsV2", "b", None, {"list-type": "2"}, {})
    assert "s3:prefix" not in access.keys


def test_acl_header_keys() -> None:
    for operation in ("PutObject", "CopyObject", "CreateMultipartUpload", "PutObjectAcl"):
        access = required(operation, "b", "k", {}, {"x-amz-acl": "public-read"})[0]
        assert access.keys["s3:x-amz-acl"] == ("public-read",)
    (access,) = required("CreateBucket", "b", None, {}, {"x-amz-grant-read": 'id="abc"'})
    assert access.keys["s3:x-amz-grant-read"] == ('id="abc"',)
    (access,) = required("GetObject", "b", "k", {}, {"x-amz-acl": "public-read"})
    assert "s3:x-amz-acl" not in access.keys


def test_copy_needs_read_on_the_source() -> None:
    target, source = required("CopyObject", "b", "k", {}, {}, ("src", "a/b", None))
    assert (target.action, target.resource) == ("s3:PutObject", "arn:aws:s3:::b/k")
    assert target.keys["s3:x-amz-copy-source"] == ("src/a/b",)
    assert (source.action, source.resource, source.bucket) == ("s3:GetObject", "arn:aws:s3:::src/a/b", "src")
    _, source = required("UploadPartCopy", "b", "k", {"uploadId": "u"}, {}, ("src", "x", "v9"))
    assert source.action == "s3:GetObjectVersion" and source.keys["s3:versionid"] == ("v9",)


def test_deferred_operations() -> None:
    assert required("DeleteObjects", "b", None, {"delete": ""}, {}) == ()
    assert required("PostObject", "b", None, {}, {}) == ()
    assert delete_access("b", "k", None).action == "s3:DeleteObject"
    versioned = delete_access("b", "k", "v")
    assert versioned.action == "s3:DeleteObjectVersion" and versioned.resource == "arn:aws:s3:::b/k"


def test_an_unmapped_operation_needs_its_own_permission() -> None:
    (access,) = required("PutBucketLifecycle", "b", None, {}, {})
    assert access.action == "s3:PutBucketLifecycle" and access.resource == B
