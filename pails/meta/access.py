"""What the metadata stores keep for authorization: a bucket's policy, ACL and PublicAccessBlock,
and object ACLs (documents as text; pails.iam parses them). Implemented by access_sqlite and
access_postgres, mixed into both stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pails.meta.models import Bucket


@dataclass(frozen=True, slots=True)
class BucketAccess:
    bucket: Bucket
    policy: str | None  # the bucket policy document, None when there is none
    acl: str | None  # JSON (pails.iam.acl), None: the default private ACL
    public_access_block: str | None  # JSON (pails.iam.public), None: none configured


class AccessStore(Protocol):
    async def get_bucket_access(self, name: str) -> BucketAccess | None: ...

    async def set_bucket_policy(self, bucket_id: int, policy: str | None) -> None:
        """Replace (None: delete) the bucket policy; NoSuchBucketError if the bucket is gone."""
        ...

    async def set_bucket_acl(self, bucket_id: int, acl: str) -> None: ...

    async def set_public_access_block(self, bucket_id: int, config: str | None) -> None: ...

    async def set_object_acl(self, bucket_id: int, key: str, version_id: str | None, acl: str) -> str | None:
        """Replace the ACL of the key's latest version (or of the given version) in place; the
        version id changed, or None when there is no such version or it is a delete marker."""
        ...
