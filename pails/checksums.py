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
import functools
import hashlib
import zlib
from collections.abc import Sequence
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
    name = _HEADER_OF.get(algorithm)
    return name if name is not None else "x-amz-checksum-" + normalize_algorithm(algorithm).lower()


_HEADER_OF = {a: "x-amz-checksum-" + a.lower() for a in ALGORITHMS}
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


# Full-object checksums of multipart uploads: combining CRCs without the data.

CHECKSUM_TYPES: tuple[str, ...] = ("COMPOSITE", "FULL_OBJECT")
"""x-amz-checksum-type: how a multipart object's checksum derives from its parts' checksums."""

FULL_OBJECT_ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME")
"""The algorithms whose part checksums combine into the whole object's (the linear CRCs)."""

# (reflected polynomial, width in bits) of each CRC; every one has init = xorout = all ones.
_CRC_PARAMS: dict[str, tuple[int, int]] = {
    "CRC32": (0xEDB88320, 32),
    "CRC32C": (0x82F63B78, 32),
    "CRC64NVME": (0x9A6C9329AC4BC9B5, 64),
}


def checksum_type_for(algorithm: str, requested: str) -> str:
    """The checksum type of a new multipart upload (S3's rules): FULL_OBJECT only for the CRCs,
    COMPOSITE only for CRC32, CRC32C and the SHAs; unstated, CRC64NVME is FULL_OBJECT and the
    others COMPOSITE. "" when there is no algorithm (a type without one is InvalidRequest)."""
    kind = requested.strip().upper()
    if kind and kind not in CHECKSUM_TYPES:
        raise S3Error("InvalidRequest", f"Value for x-amz-checksum-type header is invalid: {requested!r}.")
    if not algorithm:
        if kind:
            raise S3Error(
                "InvalidRequest",
                "The x-amz-checksum-type header requires an x-amz-checksum-algorithm header.",
            )
        return ""
    if not kind:
        return "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    if kind == "FULL_OBJECT" and algorithm not in FULL_OBJECT_ALGORITHMS:
        raise S3Error(
            "InvalidRequest", f"The FULL_OBJECT checksum type cannot be used with the {algorithm} algorithm."
        )
    if kind == "COMPOSITE" and algorithm == "CRC64NVME":
        raise S3Error(
            "InvalidRequest", "The COMPOSITE checksum type cannot be used with the CRC64NVME algorithm."
        )
    return kind


def _gf2_multiply(a: int, b: int, poly: int, width: int) -> int:
    """a * b modulo the polynomial, both in the reflected bit order (x^0 is the top bit)."""
    top = 1 << (width - 1)
    product = 0
    while a:
        if a & top:
            product ^= b
        a = (a << 1) & ((1 << width) - 1)
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return product


@functools.cache
def _x_pow_2k(algorithm: str) -> tuple[int, ...]:
    """x^(2^k) modulo the algorithm's polynomial, for k = 0 .. 66 (reflected)."""
    poly, width = _CRC_PARAMS[algorithm]
    power = 1 << (width - 2)  # x^1
    table = [power]
    for _ in range(66):
        power = _gf2_multiply(power, power, poly, width)
        table.append(power)
    return tuple(table)


@functools.lru_cache(maxsize=256)
def _shift_operator(algorithm: str, length: int) -> int:
    """x^(8 * length) modulo the polynomial: appending `length` zero bytes multiplies by it."""
    poly, width = _CRC_PARAMS[algorithm]
    table = _x_pow_2k(algorithm)
    result = 1 << (width - 1)  # x^0
    bits = 8 * length
    k = 0
    while bits:
        if bits & 1:
            result = _gf2_multiply(table[k], result, poly, width)
        bits >>= 1
        k += 1
    return result


def crc_combine(crc_a: int, crc_b: int, len_b: int, algorithm: str) -> int:
    """The CRC of A + B from crc(A), crc(B) and len(B) alone (zlib's crc32_combine, generalised):
    crc(A + B) = crc(A) * x^(8 len B) mod P xor crc(B), for CRC32, CRC32C and CRC64NVME, whose
    initial value and final xor are both all ones. O(log len_b) polynomial products."""
    name = normalize_algorithm(algorithm)
    if name not in _CRC_PARAMS:
        raise ValueError(f"{algorithm} is not a combinable CRC")
    if len_b < 0:
        raise ValueError("len_b must not be negative")
    if len_b == 0:
        return crc_a
    poly, width = _CRC_PARAMS[name]
    return _gf2_multiply(_shift_operator(name, len_b), crc_a, poly, width) ^ crc_b


def combine_b64(algorithm: str, parts: Sequence[tuple[str, int]]) -> str:
    """The full-object checksum (base64, big-endian) from the parts' (base64 checksum, size) in
    order. Raises ValueError (binascii.Error) on a malformed part value."""
    width = _CRC_PARAMS[normalize_algorithm(algorithm)][1] // 8
    crc = 0
    for value, size in parts:
        raw = base64.b64decode(value, validate=True)
        if len(raw) != width:
            raise ValueError("checksum of the wrong length")
        crc = crc_combine(crc, int.from_bytes(raw, "big"), size, algorithm)
    return base64.b64encode(crc.to_bytes(width, "big")).decode("ascii")
