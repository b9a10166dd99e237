"""Object and bucket tagging: S3's tag rules (pure functions) and the operations over the store.

Object tags are part of an object version (each version keeps its own); bucket tags are one set per
bucket. Limits (S3): at most 10 tags per object and 50 per bucket, keys of 1 to 128 and values of
up to 256 Unicode characters (letters, digits, spaces and ``+ - = . _ : / @``), keys unique and
never prefixed ``aws:``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode

from pails.errors import S3Error
from pails.meta.models import Bucket, ObjectVersion
from pails.meta.store import MetadataStore, NoSuchBucketError
from pails.service.objects import check_version_id, find_version, validate_key

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_ALLOWED_PUNCTUATION = frozenset("+-=._:/@")
_ATTEMPTS = 3


def _allowed(text: str) -> bool:
    """S3's tag alphabet: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*."""
    return all(c in _ALLOWED_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def validate_tags(pairs: Sequence[tuple[str, str]], *, limit: int = MAX_OBJECT_TAGS) -> dict[str, str]:
    """Check a tag set against S3's rules (InvalidTag) and return it as a map."""
    if len(pairs) > limit:
        what = "Object tags" if limit == MAX_OBJECT_TAGS else "Bucket tag count"
        raise S3Error("InvalidTag", f"{what} cannot be greater than {limit}")
    tags: dict[str, str] = {}
    for key, value in pairs:
        if len(key) > MAX_TAG_KEY:
            raise S3Error("InvalidTag", f"The TagKey you have provided is too long, max {MAX_TAG_KEY}")
        if len(value) > MAX_TAG_VALUE:
            raise S3Error("InvalidTag", f"The TagValue you have provided is too long, max {MAX_TAG_VALUE}")
        if not key or not _allowed(key):
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid")
        if not _allowed(value):
            raise S3Error("InvalidTag", "The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[key] = value
    return tags


def parse_tagging_header(value: str | None) -> dict[str, str]:
    """x-amz-tagging: URL-encoded query-string form ("k1=v1&k2=v2"); absent or empty: no tags."""
    if value is None or not value.strip():
        return {}
    pairs = parse_qsl(value.strip(), keep_blank_values=True)
    if len({key for key, _ in pairs}) != len(pairs):
        raise S3Error(
            "InvalidArgument",
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
            "parameters without tag name duplicates.",
            extra={"ArgumentName": "x-amz-tagging", "ArgumentValue": value},
        )
    return validate_tags(pairs)


def tagging_header(tags: dict[str, str]) -> str:
    """The x-amz-tagging form of a tag set (inverse of parse_tagging_header)."""
    return urlencode(list(tags.items()))


def tagging_directive(value: str | None) -> str:
    """CopyObject's x-amz-tagging-directive: COPY (default) or REPLACE."""
    directive = (value or "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error(
            "InvalidArgument",
            "Unknown tagging directive.",
            extra={"ArgumentName": "x-amz-tagging-directive", "ArgumentValue": value or ""},
        )
    return directive


class TaggingService:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    async def object_tags(self, bucket: Bucket, key: str, version_id: str | None) -> ObjectVersion:
        """The version whose tags GetObjectTagging reports (NoSuchKey / NoSuchVersion /
        MethodNotAllowed for a delete marker, as GetObject)."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
        return find_version(await self._meta.get_object(bucket.id, key, version_id), key, version_id)

    async def set_object_tags(
        self, bucket: Bucket, key: str, version_id: str | None, tags: dict[str, str]
    ) -> str:
        """Replace the tags of the latest version (or the one named); returns its version id."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
        for _ in range(_ATTEMPTS):
            try:
                tagged = await self._meta.set_object_tags(bucket.id, key, version_id, tags)
            except NoSuchBucketError:
                raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None
            if tagged is not None:
                return tagged
            # Nothing tagged: say why (raises), unless the key changed meanwhile (then again).
            await self.object_tags(bucket, key, version_id)
        if version_id is not None:
            raise S3Error("NoSuchVersion", extra={"Key": key, "VersionId": version_id})
        raise S3Error("NoSuchKey", extra={"Key": key})

    async def bucket_tags(self, bucket: Bucket) -> dict[str, str]:
        try:
            tags = await self._meta.get_bucket_tags(bucket.id)
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None
        if tags is None:
            raise S3Error("NoSuchTagSet", extra={"BucketName": bucket.name})
        return tags

    async def set_bucket_tags(self, bucket: Bucket, tags: dict[str, str] | None) -> None:
        """Replace the bucket's tag set; None (or an empty set) removes it."""
        try:
            await self._meta.set_bucket_tags(bucket.id, tags or None)
        except NoSuchBucketError:
            raise S3Error("NoSuchBucket", extra={"BucketName": bucket.name}) from None
