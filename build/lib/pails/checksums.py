"""Incremental hashers for the S3 additional checksums (``x-amz-checksum-*``).

Every algorithm shares one tiny interface::

    c = new_checksum("crc32c")
    c.update(b"...")
    c.b64digest()  # what S3 sends in x-amz-checksum-crc32c

Digests are big-endian, as S3 transmits them. The CRCs run in C: CRC32 through ``zlib``,
CRC32C and CRC64NVME through ``awscrt`` (its CRC32C is several times faster than
``google_crc32c`` and, unlike it, accepts a ``memoryview`` without a copy).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Protocol

from awscrt import checksums as _crt

from pails.errors import S3Error

ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
"""The algorithm names S3 accepts in x-amz-checksum-algorithm / x-amz-sdk-checksum-algorithm."""

Buffer = bytes | bytearray | memoryview


class Checksum(Protocol):
    """An incremental checksum of one algorithm."""

    algorithm: str

    def update(self, data: Buffer) -> None: ...

    def digest(self) -> bytes: ...

    def b64digest(self) -> str: ...


class _Crc32:
    __slots__ = ("_crc",)
    algorithm = "CRC32"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: Buffer) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _Crc32c:
    __slots__ = ("_crc",)
    algorithm = "CRC32C"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: Buffer) -> None:
        self._crc = _crt.crc32c(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _Crc64Nvme:
    __slots__ = ("_crc",)
    algorithm = "CRC64NVME"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: Buffer) -> None:
        self._crc = _crt.crc64nvme(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(8, "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _Sha:
    __slots__ = ("_h", "algorithm")

    def __init__(self, algorithm: str, name: str) -> None:
        self.algorithm = algorithm
        self._h = hashlib.new(name)

    def update(self, data: Buffer) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def b64digest(self) -> str:
        return base64.b64encode(self._h.digest()).decode("ascii")


def normalize_algorithm(algorithm: str) -> str:
    """Return the canonical upper-case name, or raise InvalidRequest for an unknown algorithm."""
    name = algorithm.strip().upper()
    if name not in ALGORITHMS:
        raise S3Error(
            "InvalidRequest",
            f"Value for x-amz-checksum-algorithm header is invalid: {algorithm!r}; "
            f"expected one of {', '.join(ALGORITHMS)}.",
        )
    return name


def new_checksum(algorithm: str) -> Checksum:
    """A fresh incremental hasher for ``algorithm`` (case-insensitive)."""
    name = normalize_algorithm(algorithm)
    if name == "CRC32":
        return _Crc32()
    if name == "CRC32C":
        return _Crc32c()
    if name == "CRC64NVME":
        return _Crc64Nvme()
    if name == "SHA1":
        return _Sha("SHA1", "sha1")
    return _Sha("SHA256", "sha256")


def header_name(algorithm: str) -> str:
    """``"crc32"`` -> ``"x-amz-checksum-crc32"``."""
    return "x-amz-checksum-" + normalize_algorithm(algorithm).lower()


HEADER_NAMES: dict[str, str] = {"x-amz-checksum-" + a.lower(): a for a in ALGORITHMS}
"""Map from a lower-case checksum header name to its algorithm."""


def algorithm_of_header(name: str) -> str | None:
    """``"x-amz-checksum-crc32"`` -> ``"CRC32"``; None if it names no known checksum."""
    return HEADER_NAMES.get(name.lower())


def b64_checksum(algorithm: str, data: Buffer) -> str:
    """One-shot checksum of ``data``."""
    c = new_checksum(algorithm)
    c.update(data)
    return c.b64digest()
