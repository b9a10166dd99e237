"""Bucket policies, ACLs and PublicAccessBlock: validation, storage, and the cached view the
authorizer reads. Knows S3 semantics, not HTTP."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from pails.errors import S3Error
from pails.iam.acl import Acl, AclError, acl_from_json
from pails.iam.authorizer import BucketAuth
from pails.iam.cache import MISS, BucketCache
from pails.iam.directory import CredentialStore
from pails.iam.policy import BUCKET_POLICY_MAX_BYTES, MalformedPolicy, Policy, parse_policy
from pails.iam.public import PublicAccessBlock, policy_is_public
from pails.meta.access import BucketAccess
from pails.meta.models import ObjectVersion
from pails.meta.store import MetadataStore, NoSuchBucketError

log = logging.getLogger("pails.access")


def acl_error(exc: AclError) -> S3Error:
    return S3Error(exc.code, exc.message, status=400)


def parse_bucket_policy(body: bytes) -> Policy:
    """A bucket policy document, or MalformedPolicy (400) with the parser's reason."""
    try:
        return parse_policy(body, require_principal=True, max_bytes=BUCKET_POLICY_MAX_BYTES)
    except MalformedPolicy as exc:
        raise S3Error("MalformedPolicy", exc.message, status=400) from None


class AccessService:
    def __init__(
        self,
        meta: MetadataStore,
        credentials: CredentialStore,
        *,
        ttl: float = 1.0,
        redis_url: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._meta = meta
        self._credentials = credentials
        self.cache = BucketCache(self._load, self._build, ttl=ttl, redis_url=redis_url, registry=registry)

    async def start(self) -> None:
        await self.cache.start()

    async def close(self) -> None:
        await self.cache.close()

    async def _load(self, name: str) -> BucketAccess | None:
        return await self._meta.get_bucket_access(name)

    def _build(self, access: BucketAccess | None) -> BucketAuth | None:
        if access is None:
            return None
        bucket = access.bucket
        policy: Policy | None = None
        if access.policy:
            try:
                policy = parse_policy(access.policy, require_principal=True)
            except MalformedPolicy as exc:  # stored before a parser change: deny everything it granted
                log.error("bucket %s: stored policy no longer parses (%s); ignoring it", bucket.name, exc)
        owner = self._credentials.identity_of(bucket.owner_id)
        return BucketAuth(
            name=bucket.name,
            bucket_id=bucket.id,
            owner_id=bucket.owner_id,
            owner_account=self._credentials.account_of(bucket.owner_id),
            policy=policy,
            acl=acl_from_json(access.acl, bucket.owner_id, owner.display_name if owner else ""),
            pab=PublicAccessBlock.from_json(access.public_access_block),
            policy_text=access.policy,
            row=bucket,
        )

    async def bucket(self, name: str) -> BucketAuth | None:
        """The cached authorization view of a bucket; None if there is no such bucket."""
        value: BucketAuth | None = self.cache.peek(name)
        if value is MISS:
            value = await self.cache.get(name)
        return value

    async def existing(self, name: str) -> BucketAuth:
        auth = await self.bucket(name)
        if auth is None:
            raise S3Error("NoSuchBucket", extra={"BucketName": name})
        return auth

    async def _write(self, name: str, what: str, value: str | None) -> None:
        auth = await self.existing(name)
        try:
            if what == "policy":
                await self._meta.set_bucket_policy(auth.bucket_id, value)
            elif what == "acl":
                assert value is not None
                await self._meta.set_bucket_acl(auth.bucket_id, value)
            else:
                await self._meta.set_public_access_block(auth.bucket_id, value)
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": name}) from None
        finally:
            await self.cache.invalidate(name)

    # policy

    async def put_policy(self, name: str, body: bytes) -> None:
        policy = parse_bucket_policy(body)
        auth = await self.existing(name)
        if auth.pab is not None and auth.pab.block_public_policy and policy_is_public(policy):
            raise S3Error("AccessDenied", "Access Denied (BlockPublicPolicy is on for this bucket)")
        await self._write(name, "policy", body.decode("utf-8"))

    async def get_policy(self, name: str) -> str:
        auth = await self.existing(name)
        if auth.policy_text is None:
            raise S3Error(
                "NoSuchBucketPolicy",
                "The bucket policy does not exist",
                status=404,
                extra={"BucketName": name},
            )
        return auth.policy_text

    async def delete_policy(self, name: str) -> None:
        await self._write(name, "policy", None)

    async def policy_status(self, name: str) -> bool:
        auth = await self.existing(name)
        return policy_is_public(auth.policy)

    # ACLs

    async def put_bucket_acl(self, name: str, acl: Acl) -> None:
        auth = await self.existing(name)
        if acl.is_public and auth.pab is not None and auth.pab.block_public_acls:
            raise S3Error("AccessDenied", "Access Denied (BlockPublicAcls is on for this bucket)")
        await self._write(name, "acl", acl.to_json())

    async def put_object_acl(self, auth: BucketAuth, key: str, version_id: str | None, acl: Acl) -> str:
        if acl.is_public and auth.pab is not None and auth.pab.block_public_acls:
            raise S3Error("AccessDenied", "Access Denied (BlockPublicAcls is on for this bucket)")
        changed = await self._meta.set_object_acl(auth.bucket_id, key, version_id, acl.to_json())
        if changed is None:
            if version_id is not None:
                raise S3Error("NoSuchVersion", extra={"Key": key, "VersionId": version_id})
            raise S3Error("NoSuchKey", extra={"Key": key})
        return changed

    async def get_object(self, auth: BucketAuth, key: str, version_id: str | None) -> ObjectVersion | None:
        """The version an object operation names (None: none, or a delete marker)."""
        obj = await self._meta.get_object(auth.bucket_id, key, version_id)
        return None if obj is None or obj.is_delete_marker else obj

    def object_acl(self, auth: BucketAuth, obj: ObjectVersion) -> Acl:
        return acl_from_json(obj.acl, auth.owner_id, auth.acl.owner_name)

    # PublicAccessBlock

    async def put_public_access_block(self, name: str, config: PublicAccessBlock) -> None:
        await self._write(name, "pab", config.to_json())

    async def get_public_access_block(self, name: str) -> PublicAccessBlock:
        auth = await self.existing(name)
        if auth.pab is None:
            raise S3Error(
                "NoSuchPublicAccessBlockConfiguration",
                "The public access block configuration was not found",
                status=404,
                extra={"BucketName": name},
            )
        return auth.pab

    async def delete_public_access_block(self, name: str) -> None:
        await self._write(name, "pab", None)

    async def changed(self, name: str) -> None:
        """The bucket was created or deleted."""
        await self.cache.invalidate(name)
