"""Turns a request line into a typed Endpoint. Pure: no I/O, no aiohttp."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from urllib.parse import unquote

from pails.errors import S3Error


# Not frozen (made for every request, and a frozen dataclass's __init__ costs several times more);
# treat as immutable.
@dataclass(slots=True)
class Endpoint:
    operation: str
    bucket: str | None
    key: str | None


# Sub-resources Pails serves (everything else in _UNSUPPORTED_SUBRESOURCES is NotImplemented):
#   bucket GET:  location -> GetBucketLocation, uploads -> ListMultipartUploads,
#                versions -> ListObjectVersions, list-type=2 -> ListObjectsV2
#   bucket POST: delete -> DeleteObjects
#   object:      uploads (POST), uploadId (PUT/POST/DELETE/GET) -> the multipart operations,
#                attributes (GET) -> GetObjectAttributes
#   tagging:     GET/PUT/DELETE on a bucket or an object -> Get/Put/DeleteBucketTagging,
#                Get/Put/DeleteObjectTagging (other methods on an object: MethodNotAllowed)
# "attributes", "tagging" and "versions" stay in the unsupported set for every other method and level, so
# that e.g. PUT /bucket?versions is never mistaken for CreateBucket.
#
# Sub-resources S3 knows but Pails does not serve yet: answered with NotImplemented, never
# mistaken for a plain object or bucket operation.
_UNSUPPORTED_SUBRESOURCES = frozenset(
    {
        "accelerate", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
        "inventory", "legal-hold", "lifecycle", "logging", "metrics", "notification",
        "object-lock", "ownershipControls",
        "replication", "requestPayment", "restore", "retention", "select", "tagging", "torrent",
        "versioning", "versions", "website",
    }
)  # fmt: skip


_TAGGING_METHODS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}

# Authorization sub-resources (pails.api.handlers.access): (method, sub-resource) -> operation.
_BUCKET_ACCESS = {
    ("GET", "policy"): "GetBucketPolicy",
    ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("GET", "policyStatus"): "GetBucketPolicyStatus",
    ("GET", "acl"): "GetBucketAcl",
    ("PUT", "acl"): "PutBucketAcl",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
}
_OBJECT_ACCESS = {("GET", "acl"): "GetObjectAcl", ("PUT", "acl"): "PutObjectAcl"}
_ACCESS_NAMES = frozenset(("policy", "policyStatus", "acl", "publicAccessBlock"))


def _access_operation(table: dict[tuple[str, str], str], method: str, query: Container[str]) -> str | None:
    for name in _ACCESS_NAMES:
        if name in query:
            if (method, name) in table:
                return table[(method, name)]
            raise S3Error("MethodNotAllowed")
    return None


_hosts: dict[tuple[str, str], str | None] = {}


def split_host(host: str, domain: str) -> str | None:
    """The bucket named by a virtual-hosted-style Host header, if any (remembered: a client sends
    the same Host on every request)."""
    try:
        return _hosts[host, domain]
    except KeyError:
        pass
    bucket = _split_host(host, domain)
    if len(_hosts) >= 1024:
        _hosts.clear()
    _hosts[host, domain] = bucket
    return bucket


def _split_host(host: str, domain: str) -> str | None:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower()
    suffix = "." + domain
    if domain and name.endswith(suffix) and len(name) > len(suffix):
        return name[: -len(suffix)]
    return None


def resolve(method: str, host: str, raw_path: str, query: Container[str], domain: str) -> Endpoint:
    """Map method x bucket? x key? x sub-resource to an operation name (the S3 API's names)."""
    try:
        path = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    except UnicodeDecodeError as exc:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", status=400) from exc
    vhost_bucket = split_host(host, domain)
    if vhost_bucket is not None:
        bucket: str | None = vhost_bucket
        key = path[1:] if path.startswith("/") else path
    else:
        trimmed = path[1:] if path.startswith("/") else path
        if not trimmed:
            bucket, key = None, ""
        else:
            bucket, _, key = trimmed.partition("/")
    if bucket is None:
        if method == "GET":
            return Endpoint("ListBuckets", None, None)
        raise S3Error("MethodNotAllowed")
    if key:
        return Endpoint(_object_operation(method, query), bucket, key)
    return Endpoint(_bucket_operation(method, query), bucket, None)


def _unsupported(query: Container[str]) -> str | None:
    for name in _UNSUPPORTED_SUBRESOURCES:
        if name in query:
            return name
    return None


def _bucket_operation(method: str, query: Container[str]) -> str:
    if (access := _access_operation(_BUCKET_ACCESS, method, query)) is not None:
        return access
    if "tagging" in query and method in _TAGGING_METHODS:
        return f"{_TAGGING_METHODS[method]}BucketTagging"
    if method == "GET":
        if "location" in query:
            return "GetBucketLocation"
        if "uploads" in query:
            return "ListMultipartUploads"
        if "versions" in query:
            return "ListObjectVersions"
        if "versioning" in query:
            return "GetBucketVersioning"
        if (sub := _unsupported(query)) is not None:
            raise _not_implemented(sub)
        return "ListObjectsV2" if "list-type" in query else "ListObjects"
    if method == "HEAD":
        return "HeadBucket"
    if method == "PUT":
        if "versioning" in query:
            return "PutBucketVersioning"
        if (sub := _unsupported(query)) is not None:
            raise _not_implemented(sub)
        return "CreateBucket"
    if method == "DELETE":
        if (sub := _unsupported(query)) is not None:
            raise _not_implemented(sub)
        return "DeleteBucket"
    if method == "POST":
        if "delete" in query:
            return "DeleteObjects"
        if (sub := _unsupported(query)) is not None:
            raise _not_implemented(sub)
        return "PostObject"
    raise S3Error("MethodNotAllowed")


_PLAIN_OBJECT_OPERATIONS = {
    "GET": "GetObject",
    "HEAD": "HeadObject",
    "PUT": "PutObject",
    "DELETE": "DeleteObject",
}


def _object_operation(method: str, query: Container[str]) -> str:
    if not query and method in _PLAIN_OBJECT_OPERATIONS:  # the common case, without the scans below
        return _PLAIN_OBJECT_OPERATIONS[method]
    if "attributes" in query:
        if method == "GET":
            return "GetObjectAttributes"
        raise S3Error("MethodNotAllowed")
    if "tagging" in query:
        if method in _TAGGING_METHODS:
            return f"{_TAGGING_METHODS[method]}ObjectTagging"
        raise S3Error("MethodNotAllowed")
    if (access := _access_operation(_OBJECT_ACCESS, method, query)) is not None:
        return access
    if (sub := _unsupported(query)) is not None:
        raise _not_implemented(sub)
    if "uploadId" in query:
        return _upload_operation(method, query)
    if "uploads" in query:
        if method == "POST":
            return "CreateMultipartUpload"
        raise S3Error("MethodNotAllowed")
    if method == "GET":
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        return "PutObject"
    if method == "DELETE":
        return "DeleteObject"
    if method == "POST":
        raise _not_implemented("POST")
    raise S3Error("MethodNotAllowed")


def _upload_operation(method: str, query: Container[str]) -> str:
    if method == "PUT":
        return "UploadPart"  # UploadPartCopy when x-amz-copy-source is present: see with_copy_source
    if method == "POST":
        return "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload"
    if method == "GET":
        return "ListParts"
    raise S3Error("MethodNotAllowed")


_COPY_OPERATIONS = {"PutObject": "CopyObject", "UploadPart": "UploadPartCopy"}


def with_copy_source(endpoint: Endpoint) -> Endpoint:
    """The endpoint of a request with an x-amz-copy-source header: a PUT with it is a copy (the
    only S3 operations a header selects)."""
    if endpoint.operation in _COPY_OPERATIONS:
        return Endpoint(_COPY_OPERATIONS[endpoint.operation], endpoint.bucket, endpoint.key)
    return endpoint


def _not_implemented(what: str) -> S3Error:
    return S3Error("NotImplemented", f"Pails does not implement '{what}' yet.")
