"""Object operations over the metadata store and the chunk store. Knows S3 semantics, not HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate

from pails.data.engine import ChunkStore
from pails.errors import S3Error
from pails.limits import MAX_KEY_BYTES
from pails.meta.models import Bucket, DeleteOutcome, ListPage, ObjectVersion, VersionPage, WriteCondition
from pails.meta.rules import is_version_id
from pails.meta.store import MetadataStore, NoSuchBucketError, NoSuchKeyError, PreconditionFailedError
from pails.meta.unavailable import outcome_unknown
from pails.service.bodies import StoredBody, read_range, store_body
from pails.service.verify import verify_stored


@dataclass(frozen=True, slots=True)
class PutRequest:
    key: str
    expected_size: int | None
    content_type: str
    headers: dict[str, str]
    user_metadata: dict[str, str]
    content_md5: bytes | None  # the decoded Content-MD5, verified against the body
    expected_sha256: str | None  # hex x-amz-content-sha256, verified against the body
    checksum_algorithms: tuple[str, ...]  # computed and stored
    storage_class: str = "STANDARD"
    condition: WriteCondition | None = None  # If-None-Match / If-Match, checked at commit
    tags: dict[str, str] = field(default_factory=dict)  # x-amz-tagging, validated
    acl: str = ""  # the version's ACL (JSON, pails.iam.acl); "" the default


def condition_error(exc: PreconditionFailedError | NoSuchKeyError, key: str) -> S3Error:
    """The S3 answer to a conditional write whose condition did not hold at commit time."""
    if isinstance(exc, NoSuchKeyError):
        return S3Error("NoSuchKey", extra={"Key": key})
    return S3Error("PreconditionFailed", extra={"Condition": str(exc.args[0]) if exc.args else ""})


def check_version_id(version_id: str) -> None:
    """A versionId that Pails can never have issued is a client error (400), as in S3; a
    well-formed id that names nothing is NoSuchVersion (404), decided by the lookup."""
    if not version_id:
        raise S3Error(
            "InvalidArgument",
            "Version id cannot be the empty string",
            extra={"ArgumentName": "versionId", "ArgumentValue": ""},
        )
    if not is_version_id(version_id):
        raise S3Error(
            "InvalidArgument",
            "Invalid version id specified",
            extra={"ArgumentName": "versionId", "ArgumentValue": version_id},
        )


def find_version(obj: ObjectVersion | None, key: str, version_id: str | None) -> ObjectVersion:
    """The S3 answer to reading `obj` (the latest version of key, or the version asked for)."""
    if version_id is None:
        if obj is None:
            raise S3Error("NoSuchKey", extra={"Key": key})
        if obj.is_delete_marker:
            raise S3Error(
                "NoSuchKey",
                extra={"Key": key},
                headers={"x-amz-delete-marker": "true", "x-amz-version-id": obj.version_id},
            )
        return obj
    if obj is None:
        raise S3Error("NoSuchVersion", extra={"Key": key, "VersionId": version_id})
    if obj.is_delete_marker:
        raise S3Error(
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            extra={"ResourceType": "DeleteMarker"},
            headers={
                "x-amz-delete-marker": "true",
                "x-amz-version-id": obj.version_id,
                "Last-Modified": formatdate(obj.last_modified, usegmt=True),
                "Allow": "DELETE",
            },
        )
    return obj


def validate_key(key: str) -> None:
    # A code point is at most 4 bytes of UTF-8: a short key needs no encoding to be measured.
    if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", extra={"MaxSizeAllowed": str(MAX_KEY_BYTES)})


class ObjectService:
    def __init__(self, meta: MetadataStore, chunks: ChunkStore) -> None:
        self._meta = meta
        self._chunks = chunks

    async def put(
        self,
        bucket: Bucket,
        request: PutRequest,
        body: AsyncIterable[bytes],
        verify_checksums: dict[str, str | None],
    ) -> tuple[ObjectVersion, StoredBody]:
        """Store the body, verify every digest, then commit the metadata row (the moment it exists).

        verify_checksums maps an algorithm to its expected base64 value; a None value is read
        after the body (an aws-chunked trailer) through the returned callable's dict.
        """
        validate_key(request.key)
        stored = await store_body(
            self._chunks,
            body,
            expected_size=request.expected_size,
            checksum_algorithms=request.checksum_algorithms,
            want_sha256=request.expected_sha256 is not None,
        )
        try:
            self._verify(request, stored, verify_checksums)
            obj = ObjectVersion(
                bucket_id=bucket.id,
                key=request.key,
                version_id="null",
                size=stored.size,
                etag=stored.md5_hex,
                last_modified=time.time(),
                content_type=request.content_type,
                headers=request.headers,
                user_metadata=request.user_metadata,
                checksums=stored.checksums,
                storage_class=request.storage_class,
                manifest=stored.manifest,
                tags=request.tags,
                acl=request.acl,
            )
            barrier = self._chunks.sync_barrier(stored.manifest)
            try:
                obj = await self._meta.put_object(obj, before_commit=barrier, condition=request.condition)
            except NoSuchBucketError:
                raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None
            except (PreconditionFailedError, NoSuchKeyError) as exc:
                raise condition_error(exc, request.key) from None
            finally:
                barrier.release()
        except BaseException as exc:
            if not outcome_unknown(exc):  # else a committed row may name them: the orphan sweep decides
                await self._chunks.delete([ref.chunk_id for ref in stored.manifest])
            raise
        return obj, stored

    @staticmethod
    def _verify(request: PutRequest, stored: StoredBody, expected: dict[str, str | None]) -> None:
        verify_stored(
            stored,
            content_md5=request.content_md5,
            expected_sha256=request.expected_sha256,
            expected_checksums=expected,
        )

    async def head(
        self, bucket: Bucket, key: str, version_id: str | None = None, *, head_only: bool = False
    ) -> ObjectVersion:
        """The latest version of key (NoSuchKey, with x-amz-delete-marker when it is a delete
        marker), or the version asked for (NoSuchVersion; MethodNotAllowed for a delete marker).

        head_only: no body will be read (HeadObject): the manifest and ACL may be left out.
        """
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
        obj = await self._meta.get_object(bucket.id, key, version_id, head_only=head_only)
        return find_version(obj, key, version_id)

    def body(self, obj: ObjectVersion, start: int, end: int) -> AsyncIterator[bytes]:
        return read_range(self._chunks, obj.manifest, start, end)

    def body_now(self, obj: ObjectVersion, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of a one-chunk object when the chunk store has them at hand (see
        ChunkStore.read_now); None: stream them with body()."""
        if len(obj.manifest) != 1 or start >= end:
            return None
        return self._chunks.read_now(obj.manifest[0].chunk_id, start, end)

    async def delete(self, bucket: Bucket, key: str, version_id: str | None = None) -> DeleteOutcome:
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
        try:
            return await self._meta.delete_version(bucket.id, key, version_id, now=time.time())
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None

    async def delete_many(self, bucket: Bucket, keys: Sequence[str]) -> list[bool]:
        return await self._meta.delete_objects(bucket.id, keys)

    async def delete_versions(
        self, bucket: Bucket, items: Sequence[tuple[str, str | None]]
    ) -> list[DeleteOutcome]:
        """DeleteObjects: (key, version id or None) each, in one transaction."""
        try:
            return await self._meta.delete_versions(bucket.id, items, now=time.time())
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None

    async def list_versions(
        self,
        bucket: Bucket,
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_id_marker: str,
        max_keys: int,
    ) -> VersionPage:
        return await self._meta.list_versions(
            bucket.id,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=max_keys,
        )

    async def list(
        self, bucket: Bucket, *, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> ListPage:
        return await self._meta.list_objects(
            bucket.id, prefix=prefix, delimiter=delimiter, start_after=start_after, max_keys=max_keys
        )
