"""Bucket rules and operations: naming, creation races, deletion of empty buckets."""

from __future__ import annotations

import ipaddress
import re

from pails.errors import S3Error
from pails.iam.cache import MISS
from pails.iam.credentials import Identity
from pails.limits import MAX_BUCKET_NAME, MIN_BUCKET_NAME
from pails.meta.models import Bucket
from pails.meta.store import BucketExists, BucketNotEmptyError, MetadataStore, NoSuchBucketError
from pails.service.access import AccessService

_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_bucket_name(name: str) -> None:
    """AWS's general-purpose bucket naming rules."""
    ok = (
        MIN_BUCKET_NAME <= len(name) <= MAX_BUCKET_NAME
        and _NAME.match(name) is not None
        and ".." not in name
        and not name.startswith(_RESERVED_PREFIXES)
        and not name.endswith(_RESERVED_SUFFIXES)
        and not _is_ip_address(name)
    )
    if not ok:
        raise S3Error("InvalidBucketName", extra={"BucketName": name})


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


class BucketService:
    """Bucket operations. Lookups read the bucket's row from the authorization cache
    (AccessService), which loads it with the policy and ACL: one metadata read serves both, and
    the entry is invalidated, on every worker, wherever the row changes (creation, deletion,
    versioning) or the bucket's access settings do. A stale entry is harmless for writes because
    object commits re-check the bucket inside their transaction."""

    def __init__(self, meta: MetadataStore, region: str, access: AccessService) -> None:
        self._meta = meta
        self.region = region
        self._access = access

    async def create(self, name: str, owner: Identity, location: str | None) -> Bucket:
        validate_bucket_name(name)
        if location is not None and location != self.region:
            if location == "" and self.region == "us-east-1":
                pass
            else:
                raise S3Error(
                    "IllegalLocationConstraintException",
                    f"The {location or 'unspecified'} location constraint is incompatible for the region "
                    f"specific endpoint this request was sent to.",
                )
        try:
            return await self._meta.create_bucket(name, owner.canonical_id, self.region)
        except BucketExists as exists:
            code = (
                "BucketAlreadyOwnedByYou" if exists.owner_id == owner.canonical_id else "BucketAlreadyExists"
            )
            raise S3Error(code, extra={"BucketName": name}) from None

    def cached(self, name: str) -> Bucket | None:
        """The bucket's row when the cache holds it (no I/O, no coroutine); None: await get()."""
        auth = self._access.cache.peek(name)
        if auth is MISS or auth is None:
            return None
        row: Bucket | None = auth.row
        return row

    async def get(self, name: str) -> Bucket:
        auth = self._access.cache.peek(name)
        if auth is MISS:
            auth = await self._access.bucket(name)
        if auth is not None and auth.row is not None:
            row: Bucket = auth.row
            return row
        # The cache says there is no such bucket: ask the database, as before this cache served
        # rows (a bucket created through another gateway since then is found at once).
        bucket = await self._meta.get_bucket(name)
        if bucket is None:
            raise S3Error("NoSuchBucket", extra={"BucketName": name})
        return bucket

    async def delete(self, name: str) -> None:
        """(The caller invalidates the cached entry: AccessService.changed.)"""
        await self.get(name)
        try:
            await self._meta.delete_bucket(name)
        except BucketNotEmptyError:
            raise S3Error("BucketNotEmpty", extra={"BucketName": name}) from None

    async def set_versioning(self, name: str, status: str) -> None:
        """PutBucketVersioning: "Enabled" or "Suspended" (a bucket never returns to unversioned)."""
        bucket = await self.get(name)
        try:
            await self._meta.set_versioning(bucket.id, status)
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": name}) from None
        finally:
            await self._access.changed(name)

    async def list(self, owner: Identity) -> list[Bucket]:
        """The buckets of the caller's account (its canonical id owns them)."""
        return await self._meta.list_buckets(owner.canonical_id)
