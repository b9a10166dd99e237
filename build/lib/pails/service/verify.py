"""Checks every digest a client sent for a stored body: Content-MD5, x-amz-content-sha256, checksums."""

from __future__ import annotations

from pails.errors import S3Error
from pails.service.bodies import StoredBody


def verify_stored(
    stored: StoredBody,
    *,
    content_md5: bytes | None,
    expected_sha256: str | None,
    expected_checksums: dict[str, str | None],
) -> None:
    """expected_checksums maps an algorithm to its base64 value; None means a promised trailer
    that never arrived."""
    if content_md5 is not None and content_md5.hex() != stored.md5_hex:
        raise S3Error("BadDigest")
    if expected_sha256 is not None and expected_sha256 != stored.sha256_hex:
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            extra={
                "ClientComputedContentSHA256": expected_sha256,
                "S3ComputedContentSHA256": stored.sha256_hex or "",
            },
        )
    for algorithm, value in expected_checksums.items():
        if value is None:
            raise S3Error("InvalidRequest", f"The x-amz-checksum-{algorithm.lower()} trailer is missing.")
        if stored.checksums.get(algorithm) != value:
            raise S3Error(
                "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
            )
