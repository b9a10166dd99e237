"""Multipart uploads: S3 semantics over the metadata store (uploads, parts) and the chunk store.

A part is stored like a small object (its body becomes chunks, its row names them); completing
an upload only writes metadata: the named parts' chunk lists become the object's manifest.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass

from pails.data.engine import ChunkStore
from pails.errors import S3Error
from pails.limits import MAX_PART_NUMBER, MIN_PART_SIZE
from pails.meta.models import Bucket, ObjectVersion, Part, SharedChunks, Upload, UploadPage, WriteCondition
from pails.meta.store import (
    ChecksumMismatchError,
    EntityTooSmallError,
    InvalidPartError,
    InvalidPartOrderError,
    MetadataStore,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
    PreconditionFailedError,
    SourceChangedError,
)
from pails.meta.unavailable import outcome_unknown
from pails.service.bodies import store_body
from pails.service.objects import condition_error, validate_key
from pails.service.sharing import share_range
from pails.service.verify import verify_stored


@dataclass(frozen=True, slots=True)
class PartBody:
    """What UploadPart says about its body, to be verified once it is stored."""

    expected_size: int | None
    content_md5: bytes | None
    expected_sha256: str | None
    checksum_algorithms: tuple[str, ...]


def new_upload_id() -> str:
    """Creation time first (hex nanoseconds), so that ids of one key sort as S3 lists them."""
    return f"{time.time_ns():016x}{secrets.token_hex(12)}"


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", extra={"UploadId": upload_id})


def check_part_number(value: str | None) -> int:
    if value is None or not value.strip().isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
            extra={"ArgumentName": "partNumber", "ArgumentValue": value or ""},
        )
    return int(value)


class MultipartService:
    def __init__(
        self, meta: MetadataStore, chunks: ChunkStore, *, min_part_size: int = MIN_PART_SIZE
    ) -> None:
        self._meta = meta
        self._chunks = chunks
        self.min_part_size = min_part_size

    async def create(
        self,
        bucket: Bucket,
        key: str,
        *,
        content_type: str,
        headers: dict[str, str],
        user_metadata: dict[str, str],
        storage_class: str,
        checksum_algorithm: str,
        checksum_type: str = "",
        tags: dict[str, str] | None = None,
        acl: str = "",
    ) -> Upload:
        validate_key(key)
        upload = Upload(
            bucket_id=bucket.id,
            key=key,
            upload_id=new_upload_id(),
            initiated=time.time(),
            content_type=content_type,
            headers=headers,
            user_metadata=user_metadata,
            storage_class=storage_class,
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
            tags=tags or {},
            acl=acl,
        )
        try:
            await self._meta.create_upload(upload)
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None
        return upload

    async def get(self, bucket: Bucket, key: str, upload_id: str) -> Upload:
        """The upload in progress with this id for this key, else NoSuchUpload."""
        upload = await self._meta.get_upload(bucket.id, upload_id)
        if upload is None or upload.key != key or upload.state != "uploading":
            raise no_such_upload(upload_id)
        return upload

    async def upload_part(
        self,
        upload: Upload,
        part_number: int,
        body: AsyncIterable[bytes],
        described: PartBody,
        verify_checksums: dict[str, str | None],
    ) -> Part:
        algorithms = set(described.checksum_algorithms)
        if upload.checksum_algorithm:
            algorithms.add(upload.checksum_algorithm)
        stored = await store_body(
            self._chunks,
            body,
            expected_size=described.expected_size,
            checksum_algorithms=tuple(sorted(algorithms)),
            want_sha256=described.expected_sha256 is not None,
        )
        try:
            verify_stored(
                stored,
                content_md5=described.content_md5,
                expected_sha256=described.expected_sha256,
                expected_checksums=verify_checksums,
            )
            part = Part(
                bucket_id=upload.bucket_id,
                upload_id=upload.upload_id,
                part_number=part_number,
                size=stored.size,
                etag=stored.md5_hex,
                last_modified=time.time(),
                checksums=stored.checksums,
                manifest=stored.manifest,
            )
            barrier = self._chunks.sync_barrier(stored.manifest)
            try:
                await self._meta.put_part(part, before_commit=barrier)
            except NoSuchUploadError:
                raise no_such_upload(upload.upload_id) from None
            finally:
                barrier.release()
        except BaseException as exc:
            if not outcome_unknown(exc):  # else a committed row may name them: the orphan sweep decides
                await self._chunks.delete([ref.chunk_id for ref in stored.manifest])
            raise
        return part

    async def upload_part_copy(
        self, upload: Upload, part_number: int, source: ObjectVersion, start: int, end: int
    ) -> Part:
        """Bytes [start, end) of source become the part: whole chunks shared, edges copied."""
        algorithms = (upload.checksum_algorithm,) if upload.checksum_algorithm else ()
        whole = start == 0 and end == source.size and "-" not in source.etag
        shared = await share_range(
            self._chunks,
            source.manifest,
            start,
            end,
            want_md5=not whole,
            checksum_algorithms=() if whole and not algorithms else algorithms,
        )
        try:
            part = Part(
                bucket_id=upload.bucket_id,
                upload_id=upload.upload_id,
                part_number=part_number,
                size=shared.size,
                etag=source.etag if whole else (shared.md5_hex or ""),
                last_modified=time.time(),
                checksums=shared.checksums,
                manifest=shared.manifest,
            )
            sharing = SharedChunks(
                source.bucket_id, source.key, source.manifest, shared.shared, version_id=source.version_id
            )
            barrier = self._chunks.sync_barrier(shared.written)
            try:
                await self._meta.put_part(part, before_commit=barrier, shared=sharing)
            except NoSuchUploadError:
                raise no_such_upload(upload.upload_id) from None
            except SourceChangedError:
                raise S3Error("NoSuchKey", "The copy source was replaced or deleted meanwhile.") from None
            finally:
                barrier.release()
        except BaseException as exc:
            if shared.written and not outcome_unknown(exc):
                await self._chunks.delete([ref.chunk_id for ref in shared.written])
            raise
        return part

    async def complete(
        self,
        bucket: Bucket,
        key: str,
        upload_id: str,
        requested: Sequence[tuple[int, str, dict[str, str]]],
        condition: WriteCondition | None,
        expected_checksums: Mapping[str, str] | None = None,
    ) -> ObjectVersion:
        try:
            return await self._meta.complete_upload(
                bucket.id,
                upload_id,
                key,
                requested,
                last_modified=time.time(),
                min_part_size=self.min_part_size,
                condition=condition,
                expected_checksums=expected_checksums,
            )
        except NoSuchUploadError:
            raise no_such_upload(upload_id) from None
        except ChecksumMismatchError as exc:
            what = "checksum type" if exc.args and exc.args[0] == "type" else "checksum"
            raise S3Error(
                "BadDigest", f"The {what} you specified did not match the multipart object's {what}."
            ) from None
        except InvalidPartOrderError:
            raise S3Error("InvalidPartOrder") from None
        except InvalidPartError as exc:
            number = str(exc.args[0]) if exc.args else ""
            raise S3Error("InvalidPart", extra={"PartNumber": number, "UploadId": upload_id}) from None
        except EntityTooSmallError as exc:
            raise S3Error(
                "EntityTooSmall",
                extra={
                    "PartNumber": str(exc.part_number),
                    "ProposedSize": str(exc.size),
                    "MinSizeAllowed": str(self.min_part_size),
                },
            ) from None
        except (PreconditionFailedError, NoSuchKeyError) as exc:
            raise condition_error(exc, key) from None
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None

    async def abort(self, bucket: Bucket, key: str, upload_id: str) -> None:
        upload = await self._meta.get_upload(bucket.id, upload_id)
        if upload is None or upload.key != key or not await self._meta.abort_upload(bucket.id, upload_id):
            raise no_such_upload(upload_id)

    async def list_parts(self, upload: Upload, *, after: int, limit: int) -> tuple[list[Part], bool]:
        parts = await self._meta.list_parts(upload.bucket_id, upload.upload_id, after=after, limit=limit + 1)
        return parts[:limit], len(parts) > limit

    async def list_uploads(
        self,
        bucket: Bucket,
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadPage:
        return await self._meta.list_uploads(
            bucket.id,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            upload_id_marker=upload_id_marker,
            max_uploads=max_uploads,
        )
