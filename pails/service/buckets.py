"""Bucket rules and operations: naming, creation races, deletion of empty buckets."""

from __future__ import annotations

import ipaddress
import re
import time

from pails.errors import S3Error
from pails.iam.credentials import Identity
from pails.limits import MAX_BUCKET_NAME, MIN_BUCKET_NAME
from pails.meta.models import Bucket
from pails.meta.store import BucketExists, BucketNotEmptyError, MetadataStore, NoSuchBucketError

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


_CACHE_SECONDS = 2.0


class BucketService:
    """Bucket operations. Lookups are cached briefly (positive answers only): every request
    names a bucket, and a stale entry is harmless because object commits re-check the bucket
    inside their transaction."""

    def __init__(self, meta: MetadataStore, region: str) -> None:
        self._meta = meta
        self.region = region
        self._cache: dict[str, tuple[Bucket, float]] = {}

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

    async def get(self, name: str) -> Bucket:
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        bucket = await self._meta.get_bucket(name)
        if bucket is None:
            self._cache.pop(name, None)
            raise S3Error("NoSuchBucket", extra={"BucketName": name})
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[name] = (bucket, now + _CACHE_SECONDS)
        return bucket

    async def delete(self, name: str) -> None:
        await self.get(name)
        self._cache.pop(name, None)
        try:
            await self._meta.delete_bucket(name)
        except BucketNotEmptyError:
            raise S3Error("BucketNotEmpty", extra={"BucketName": name}) from None

    async def set_versioning(self, name: str, status: str) -> None:
        """PutBucketVersioning: "Enabled" or "Suspended" (a bucket never returns to unversioned)."""
        bucket = await self.get(name)
        self._cache.pop(name, None)
        try:
            await self._meta.set_versioning(bucket.id, status)
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": name}) from None
        finally:
            self._cache.pop(name, None)

    async def list(self, owner: Identity) -> list[Bucket]:
        """The buckets of the caller's account (its canonical id owns them)."""
        return await self._meta.list_buckets(owner.canonical_id)
