"""S3 operation -> the IAM action(s) it needs, on which resource, with which request condition keys.

Pure and table-driven. An operation may need several permissions (CopyObject: s3:PutObject on the
target and s3:GetObject on the source). DeleteObjects is authorized per key by its handler
(`PER_KEY`), as S3 reports AccessDenied per key in the DeleteResult.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from pails.iam.acl import GRANT_HEADERS

S3_ARN = "arn:aws:s3:::"


_NO_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


class Access(NamedTuple):
    """One permission a request needs: `action` on `resource` (an S3 ARN), with condition keys.
    (A NamedTuple: made for every request, and a tuple is made several times faster than a
    frozen dataclass.)"""

    action: str
    resource: str
    bucket: str | None = None
    key: str | None = None
    keys: Mapping[str, tuple[str, ...]] = _NO_KEYS

    @property
    def on_object(self) -> bool:
        return self.key is not None


def bucket_arn(bucket: str) -> str:
    return S3_ARN + bucket


def object_arn(bucket: str, key: str) -> str:
    return f"{S3_ARN}{bucket}/{key}"


# Operation -> (action, action when a versionId is given or None, level: "service" | "bucket" | "object")
_TABLE: dict[str, tuple[str, str | None, str]] = {
    "ListBuckets": ("s3:ListAllMyBuckets", None, "service"),
    "CreateBucket": ("s3:CreateBucket", None, "bucket"),
    "HeadBucket": ("s3:ListBucket", None, "bucket"),
    "DeleteBucket": ("s3:DeleteBucket", None, "bucket"),
    "GetBucketLocation": ("s3:GetBucketLocation", None, "bucket"),
    "ListObjects": ("s3:ListBucket", None, "bucket"),
    "ListObjectsV2": ("s3:ListBucket", None, "bucket"),
    "ListObjectVersions": ("s3:ListBucketVersions", None, "bucket"),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", None, "bucket"),
    "GetBucketVersioning": ("s3:GetBucketVersioning", None, "bucket"),
    "PutBucketVersioning": ("s3:PutBucketVersioning", None, "bucket"),
    "GetBucketTagging": ("s3:GetBucketTagging", None, "bucket"),
    "PutBucketTagging": ("s3:PutBucketTagging", None, "bucket"),
    "DeleteBucketTagging": ("s3:PutBucketTagging", None, "bucket"),
    "GetBucketPolicy": ("s3:GetBucketPolicy", None, "bucket"),
    "PutBucketPolicy": ("s3:PutBucketPolicy", None, "bucket"),
    "DeleteBucketPolicy": ("s3:DeleteBucketPolicy", None, "bucket"),
    "GetBucketPolicyStatus": ("s3:GetBucketPolicyStatus", None, "bucket"),
    "GetBucketAcl": ("s3:GetBucketAcl", None, "bucket"),
    "PutBucketAcl": ("s3:PutBucketAcl", None, "bucket"),
    "GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock", None, "bucket"),
    "PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock", None, "bucket"),
    "DeletePublicAccessBlock": ("s3:PutBucketPublicAccessBlock", None, "bucket"),
    "PostObject": ("s3:PutObject", None, "object"),
    "PutObject": ("s3:PutObject", None, "object"),
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion", "object"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion", "object"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion", "object"),
    "CopyObject": ("s3:PutObject", None, "object"),
    "CreateMultipartUpload": ("s3:PutObject", None, "object"),
    "UploadPart": ("s3:PutObject", None, "object"),
    "UploadPartCopy": ("s3:PutObject", None, "object"),
    "CompleteMultipartUpload": ("s3:PutObject", None, "object"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", None, "object"),
    "ListParts": ("s3:ListMultipartUploadParts", None, "object"),
    "GetObjectAttributes": ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes", "object"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging", "object"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging", "object"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging", "object"),
    "GetObjectAcl": ("s3:GetObjectAcl", "s3:GetObjectVersionAcl", "object"),
    "PutObjectAcl": ("s3:PutObjectAcl", "s3:PutObjectVersionAcl", "object"),
}

PER_KEY = frozenset({"DeleteObjects", "PostObject"})
"""Operations whose handler authorizes: DeleteObjects per key (s3:DeleteObject /
s3:DeleteObjectVersion), PostObject once the form's signature names the caller (s3:PutObject)."""

OPERATIONS = frozenset(_TABLE) | PER_KEY

# Operations that take x-amz-acl / x-amz-grant-* (the s3:x-amz-acl and s3:x-amz-grant-* keys).
_ACL_HEADER_OPERATIONS = frozenset(
    {"CreateBucket", "PutObject", "CopyObject", "CreateMultipartUpload", "PutBucketAcl", "PutObjectAcl"}
)
_WRITE_HEADER_OPERATIONS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_LIST_OPERATIONS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions"})
_LIST_KEYS = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}
_COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy"})
_ACL_HEADERS = ("x-amz-acl", *GRANT_HEADERS)
_WRITE_HEADERS = ("x-amz-server-side-encryption", "x-amz-storage-class", "x-amz-metadata-directive")


@dataclass(frozen=True, slots=True)
class _Rule:
    """What `required` needs to know about one operation, worked out once."""

    action: str
    versioned_action: str | None
    level: str  # "service" | "bucket" | "object"
    list_keys: bool
    acl_headers: bool
    write_headers: bool
    copy: bool
    plain: bool  # no request parameter, header or copy source adds a condition key


def _rule(operation: str) -> _Rule:
    # An operation added without a row in _TABLE needs its own "s3:<Operation>" permission on the
    # bucket: the bucket owner keeps it, others need a policy naming it.
    action, versioned_action, level = _TABLE.get(operation, ("s3:" + operation, None, "bucket"))
    keyed = (_LIST_OPERATIONS, _ACL_HEADER_OPERATIONS, _WRITE_HEADER_OPERATIONS, _COPY_OPERATIONS)
    list_keys, acl_headers, write_headers, copy = (operation in group for group in keyed)
    return _Rule(
        action,
        versioned_action,
        level,
        list_keys,
        acl_headers,
        write_headers,
        copy,
        not (list_keys or acl_headers or write_headers or copy),
    )


_RULES = {operation: _rule(operation) for operation in _TABLE}


def required(
    operation: str,
    bucket: str | None,
    key: str | None,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    copy_source: tuple[str, str, str | None] | None = None,
) -> tuple[Access, ...]:
    """The permissions `operation` needs. `headers` must look names up case-insensitively (or hold
    lower-case names); `copy_source` is the parsed x-amz-copy-source (bucket, key, versionId)."""
    if operation in PER_KEY:
        return ()
    rule = _RULES.get(operation) or _rule(operation)
    if rule.level == "object":
        version_id = query.get("versionId") if query else None
        if key is not None:
            object_key: str | None = key
            resource = f"{S3_ARN}{bucket or ''}/{key}"
        else:
            object_key = None
            resource = S3_ARN + (bucket or "")
    else:
        version_id = object_key = None
        resource = "arn:aws:s3:::*" if rule.level == "service" else S3_ARN + (bucket or "")
    if version_id is None and rule.plain:
        return (Access(rule.action, resource, bucket, object_key, _NO_KEYS),)
    action = rule.versioned_action if version_id is not None and rule.versioned_action else rule.action
    keys: dict[str, tuple[str, ...]] = {}
    if version_id is not None:
        keys["s3:versionid"] = (version_id,)
    if rule.list_keys:
        for param, name in _LIST_KEYS.items():
            if param in query:
                keys[name] = (query[param],)
    if rule.acl_headers:
        for name in _ACL_HEADERS:
            value = headers.get(name)
            if value is not None:
                keys["s3:" + name] = (value.strip(),)
    if rule.write_headers:
        for name in _WRITE_HEADERS:
            value = headers.get(name)
            if value is not None:
                keys["s3:" + name] = (value.strip(),)
        tagging = headers.get("x-amz-tagging")
        if tagging is not None:
            keys["s3:requestobjecttagkeys"] = tuple(
                part.split("=", 1)[0] for part in tagging.split("&") if part
            )
    copy = copy_source if rule.copy else None
    if copy is not None:
        keys["s3:x-amz-copy-source"] = (f"{copy[0]}/{copy[1]}",)
    target = Access(action, resource, bucket, object_key, keys or _NO_KEYS)
    if copy is None:
        return (target,)
    src_bucket, src_key, src_version = copy
    src_action = "s3:GetObjectVersion" if src_version is not None else "s3:GetObject"
    src_keys = {"s3:versionid": (src_version,)} if src_version is not None else _NO_KEYS
    return (target, Access(src_action, object_arn(src_bucket, src_key), src_bucket, src_key, src_keys))


def delete_access(bucket: str, key: str, version_id: str | None) -> Access:
    """One key of DeleteObjects."""
    if version_id is None:
        return Access("s3:DeleteObject", object_arn(bucket, key), bucket, key)
    return Access(
        "s3:DeleteObjectVersion", object_arn(bucket, key), bucket, key, {"s3:versionid": (version_id,)}
    )
