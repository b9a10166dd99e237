"""CopyObject: a new object row naming the source's chunks (no bytes are read or written)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pails.errors import S3Error
from pails.meta.models import Bucket, ObjectVersion, SharedChunks, WriteCondition
from pails.meta.store import (
    MetadataStore,
    NoSuchBucketError,
    NoSuchKeyError,
    PreconditionFailedError,
    SourceChangedError,
)
from pails.service.objects import check_version_id, condition_error, find_version, validate_key

_ATTEMPTS = 5  # the source replaced between our read and our commit: read it again


@dataclass(frozen=True, slots=True)
class NewMetadata:
    """x-amz-metadata-directive: REPLACE: what the copy gets instead of the source's metadata."""

    content_type: str
    headers: dict[str, str]
    user_metadata: dict[str, str]


class CopyService:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    async def source(self, bucket: Bucket, key: str, version_id: str | None = None) -> ObjectVersion:
        """The latest version of key, or the version asked for (x-amz-copy-source ?versionId=)."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
        obj = await self._meta.get_object(bucket.id, key, version_id)
        if version_id is not None and obj is not None and obj.is_delete_marker:
            raise S3Error(
                "InvalidRequest",
                "The source of a copy request may not specifically refer to a delete marker by version id.",
            )
        return find_version(obj, key, version_id)

    async def copy(
        self,
        source_bucket: Bucket,
        source_key: str,
        bucket: Bucket,
        key: str,
        *,
        check_source: Callable[[ObjectVersion], None],
        metadata: NewMetadata | None,
        storage_class: str | None,
        condition: WriteCondition | None,
        source_version_id: str | None = None,
        tags: dict[str, str] | None = None,
        acl: str = "",
    ) -> tuple[ObjectVersion, ObjectVersion]:
        """Copy the latest version of source_key; return (source, copy). check_source raises to
        refuse the source (copy-source preconditions), and runs again if the source changes.
        tags: the copy's tags (x-amz-tagging-directive: REPLACE); None copies the source's."""
        validate_key(key)
        for attempt in range(_ATTEMPTS):
            source = await self.source(source_bucket, source_key, source_version_id)
            check_source(source)
            obj = ObjectVersion(
                bucket_id=bucket.id,
                key=key,
                version_id="null",
                size=source.size,
                etag=source.etag,
                last_modified=time.time(),
                content_type=metadata.content_type if metadata else source.content_type,
                headers=metadata.headers if metadata else source.headers,
                user_metadata=metadata.user_metadata if metadata else source.user_metadata,
                checksums=source.checksums,
                storage_class=storage_class or source.storage_class,
                manifest=source.manifest,
                tags=source.tags if tags is None else tags,
                part_sizes=source.part_sizes,  # a copy keeps the parts layout, as in S3
                acl=acl,  # a copy gets its own ACL (x-amz-acl), never the source's
            )
            shared = SharedChunks(
                bucket_id=source.bucket_id,
                key=source.key,
                source_manifest=source.manifest,
                chunk_ids=tuple(ref.chunk_id for ref in source.manifest),
                version_id=source.version_id,
            )
            try:
                return source, await self._meta.put_object(obj, condition=condition, shared=shared)
            except SourceChangedError:
                if attempt == _ATTEMPTS - 1:
                    raise S3Error("SlowDown", "The copy source keeps changing; try again.") from None
            except NoSuchBucketError:
                raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None
            except (PreconditionFailedError, NoSuchKeyError) as exc:
                raise condition_error(exc, key) from None
        raise AssertionError("unreachable")
