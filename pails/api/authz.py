"""Authorization of a request (the one call app.py makes after authentication).

Maps the operation to the permissions it needs (pails.iam.actions), gathers the request's
condition keys, reads the bucket's cached policy/ACL/PublicAccessBlock (pails.iam.cache) and asks
the pure decision (pails.iam.authorizer) for each permission. The object is read from the
metadata store only when a policy tests s3:ExistingObjectTag/* or when only its ACL could still
allow the request: the common paths never touch the database for a decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, ItemsView, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial

from pails.api.context import RequestContext
from pails.errors import S3Error
from pails.iam.acl import Acl, AclError, from_headers, object_acl_covers, private
from pails.iam.actions import Access, bucket_arn, required
from pails.iam.authorizer import BucketAuth, caller_keys, decide, owner_allowed, tests_existing_object_tags
from pails.iam.cache import MISS
from pails.iam.policy import Decision
from pails.meta.models import ObjectVersion

# Operations that need no bucket (ListBuckets) or whose bucket does not exist yet (CreateBucket).
_BUCKETLESS = frozenset({"ListBuckets", "CreateBucket"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})

Keys = Mapping[str, tuple[str, ...]]


class LazyKeys(Mapping[str, tuple[str, ...]]):
    """Condition keys gathered by `gather` when first read: most decisions read none (the bucket
    owner without a policy in the way), so most requests never format aws:CurrentTime."""

    __slots__ = ("_gather", "_keys")

    def __init__(self, gather: Callable[[], Keys]) -> None:
        self._gather = gather
        self._keys: Keys | None = None

    def _all(self) -> Keys:
        keys = self._keys
        if keys is None:
            keys = self._keys = self._gather()
        return keys

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def items(self) -> ItemsView[str, tuple[str, ...]]:
        return self._all().items()


def _merged(*parts: Keys) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for part in parts:
        out.update(part)
    return out


class _Clock:
    """aws:CurrentTime and aws:EpochTime, formatted once per second."""

    __slots__ = ("current", "epoch", "second")

    def __init__(self) -> None:
        self.second = -1
        self.current: tuple[str, ...] = ()
        self.epoch: tuple[str, ...] = ()

    def keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        second = int(time.time())
        if second != self.second:
            self.current = (datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),)
            self.epoch = (str(second),)
            self.second = second
        return self.current, self.epoch


_clock = _Clock()


def signature_version(ctx: RequestContext) -> str | None:
    if ctx.auth is None:
        return None
    header = ctx.request.lower_headers.get("authorization", "")
    if header.startswith("AWS ") or "AWSAccessKeyId=" in ctx.raw_query:
        return "AWS"
    return "AWS4-HMAC-SHA256"


def request_keys(ctx: RequestContext, auth_type: str | None = None) -> dict[str, tuple[str, ...]]:
    """The global condition keys of the request (aws:* and the s3: auth keys)."""
    keys = dict(caller_keys(ctx.identity))
    keys["aws:sourceip"] = (ctx.request.remote or "",)
    keys["aws:securetransport"] = ("true" if ctx.request.secure else "false",)
    keys["aws:currenttime"], keys["aws:epochtime"] = _clock.keys()
    version = signature_version(ctx)
    if version is not None:
        keys["s3:signatureversion"] = (version,)
    if auth_type is None and ctx.auth is not None:
        auth_type = "REST-QUERY-STRING" if ctx.auth.presigned else "REST-HEADER"
    if auth_type is not None:
        keys["s3:authtype"] = (auth_type,)
    return keys


def _copy_source(ctx: RequestContext) -> tuple[str, str, str | None] | None:
    if ctx.endpoint.operation not in _COPIES:
        return None
    value = ctx.request.lower_headers.get("x-amz-copy-source")
    if value is None:
        return None
    from pails.api.handlers.copy import parse_copy_source

    return parse_copy_source(value)


def authorized_now(ctx: RequestContext) -> tuple[Access, ...]:
    """The permissions the request still needs checked by `authorize` (with I/O), or () when it
    is authorized already: the operation is authorized by its handler, per key; the bucket does
    not exist (the request passes through: the handler answers NoSuchBucket, as S3 does whoever
    asks, bucket names being global and CreateBucket revealing them anyway); or the caller is the
    bucket owner's root and no Deny is in the way (decided from the cache, no coroutine)."""
    endpoint = ctx.endpoint
    accesses = required(
        endpoint.operation,
        endpoint.bucket,
        endpoint.key,
        ctx.query,
        ctx.request.lower_headers,
        _copy_source(ctx),
    )
    if len(accesses) == 1 and endpoint.operation not in _BUCKETLESS:
        access = accesses[0]
        bucket = ctx.services.access.cache.peek(access.bucket)  # type: ignore[arg-type]
        if bucket is None or (bucket is not MISS and owner_allowed(ctx.identity, access.action, bucket)):
            return ()
    return accesses


async def authorize(ctx: RequestContext, accesses: tuple[Access, ...]) -> None:
    """Raise AccessDenied unless every permission in `accesses` (what `authorized_now` left to
    check) is granted."""
    base = LazyKeys(partial(request_keys, ctx))
    for access in accesses:
        if not await allowed(ctx, access, base):
            raise S3Error("AccessDenied")


async def allowed(ctx: RequestContext, access: Access, base: Keys | None = None) -> bool:
    """Whether the caller has `access` (True for a bucket that does not exist: see authorize)."""
    if base is None:
        base = LazyKeys(partial(request_keys, ctx))
    keys = LazyKeys(partial(_merged, base, access.keys)) if access.keys else base
    identity = ctx.identity
    if access.bucket == ctx.endpoint.bucket and ctx.endpoint.operation in _BUCKETLESS:
        return decide(identity, access, None, keys) is Decision.ALLOW
    assert access.bucket is not None
    bucket: BucketAuth | None = ctx.services.access.cache.peek(access.bucket)
    if bucket is MISS:
        bucket = await ctx.services.access.bucket(access.bucket)
    if bucket is None:
        return True
    obj: ObjectVersion | None = None
    fetched = False
    if access.on_object and (bucket.mentions_existing_object_tags or tests_existing_object_tags(identity)):
        obj, fetched = await _object(ctx, bucket, access), True
        if obj is not None and obj.tags:
            tags = {f"s3:existingobjecttag/{name}".lower(): (value,) for name, value in obj.tags.items()}
            keys = LazyKeys(partial(_merged, keys, tags))
    verdict = decide(identity, access, bucket, keys)
    if verdict is not Decision.IMPLICIT_DENY or not access.on_object or not object_acl_covers(access.action):
        return verdict is Decision.ALLOW
    if not fetched:
        obj = await _object(ctx, bucket, access)
    if obj is None:
        return False
    return (
        decide(identity, access, bucket, keys, ctx.services.access.object_acl(bucket, obj)) is Decision.ALLOW
    )


async def _object(ctx: RequestContext, bucket: BucketAuth, access: Access) -> ObjectVersion | None:
    assert access.key is not None
    version = access.keys.get("s3:versionid")
    return await ctx.services.access.get_object(bucket, access.key, version[0] if version else None)


def header_acl(
    ctx: RequestContext, owner_id: str, owner_name: str, bucket_owner: str | None = None
) -> Acl | None:
    """The ACL the request's x-amz-acl / x-amz-grant-* headers ask for (None: neither is sent)."""
    try:
        return from_headers(ctx.request.lower_headers, owner_id, owner_name, bucket_owner)
    except AclError as exc:
        raise S3Error(exc.code, exc.message, status=400) from None


async def new_object_acl(ctx: RequestContext, bucket_name: str) -> str:
    return await new_object_acl_from(ctx, bucket_name, ctx.request.lower_headers)


async def new_object_acl_from(ctx: RequestContext, bucket_name: str, headers: Mapping[str, str]) -> str:
    """The stored ACL of an object this request writes (PutObject, CopyObject,
    CreateMultipartUpload, POST): from x-amz-acl / x-amz-grant-*, else the writer's private ACL
    ("" when the writer is the bucket owner, the default)."""
    bucket = await ctx.services.access.bucket(bucket_name)
    if bucket is None:
        return ""
    identity = ctx.identity
    owner_id = identity.canonical_id if identity is not None else bucket.owner_id
    owner_name = identity.display_name if identity is not None else ""
    try:
        acl = from_headers(headers, owner_id, owner_name, bucket.owner_id)
    except AclError as exc:
        raise S3Error(exc.code, exc.message, status=400) from None
    if acl is None:
        if owner_id == bucket.owner_id:
            return ""
        acl = private(owner_id, owner_name)
    if acl.is_public and bucket.pab is not None and bucket.pab.block_public_acls:
        raise S3Error("AccessDenied", "Access Denied (BlockPublicAcls is on for this bucket)")
    return acl.to_json()


_READS = frozenset({"GetObject", "HeadObject"})


async def hide_missing_key(ctx: RequestContext, error: S3Error) -> S3Error:
    """A read of a missing key is 404 NoSuchKey only for a caller allowed to list the bucket
    (s3:ListBucket); anyone else gets 403 AccessDenied and learns nothing about the keys, as S3."""
    endpoint = ctx.endpoint
    if endpoint.operation not in _READS or endpoint.bucket is None:
        return error
    listing = Access("s3:ListBucket", bucket_arn(endpoint.bucket), endpoint.bucket)
    if await allowed(ctx, listing):
        return error
    return S3Error("AccessDenied")
