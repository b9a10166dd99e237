"""pails.checksums against botocore's own checksum classes and published check values."""

from __future__ import annotations

import base64
import itertools
import os
import zlib

import google_crc32c
import pytest
from awscrt import checksums as crt_checksums
from botocore import httpchecksum as bc
from hypothesis import given, settings
from hypothesis import strategies as st

from pails.checksums import (
    ALGORITHMS,
    algorithm_of_header,
    b64_checksum,
    checksum_type_for,
    combine_b64,
    crc_combine,
    header_name,
    new_checksum,
    normalize_algorithm,
)
from pails.errors import S3Error

BOTOCORE = {
    "CRC32": bc.Crc32Checksum,
    "CRC32C": bc.CrtCrc32cChecksum,
    "CRC64NVME": bc.CrtCrc64NvmeChecksum,
    "SHA1": bc.Sha1Checksum,
    "SHA256": bc.Sha256Checksum,
}

# The standard "check" values: the checksum of b"123456789".
CHECK = {
    "CRC32": 0xCBF43926.to_bytes(4, "big"),
    "CRC32C": 0xE3069283.to_bytes(4, "big"),
    "CRC64NVME": 0xAE8B14860A799888.to_bytes(8, "big"),
}


def reference(algorithm: str, data: bytes) -> str:
    c = BOTOCORE[algorithm]()
    c.update(data)
    result: str = c.b64digest()
    return result


@pytest.mark.parametrize("algorithm", sorted(CHECK))
def test_check_values(algorithm: str) -> None:
    c = new_checksum(algorithm)
    c.update(b"123456789")
    assert c.digest() == CHECK[algorithm]
    assert c.b64digest() == base64.b64encode(CHECK[algorithm]).decode()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_matches_botocore(algorithm: str) -> None:
    assert new_checksum(algorithm).b64digest() == reference(algorithm, b"")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_large_incremental_memoryview(algorithm: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    c = new_checksum(algorithm)
    view = memoryview(data)
    for start in range(0, len(data), 1_000_003):
        c.update(view[start : start + 1_000_003])
    assert c.b64digest() == reference(algorithm, data)


@settings(max_examples=60, deadline=None)
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    data=st.binary(max_size=4096),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=6),
)
def test_any_split_matches_botocore(algorithm: str, data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    c = new_checksum(algorithm)
    for a, b in itertools.pairwise(points):
        c.update(data[a:b] if a % 2 else bytearray(data[a:b]))
    assert c.b64digest() == reference(algorithm, data)


def test_crc32c_agrees_with_google_crc32c() -> None:
    data = os.urandom(100_000)
    c = new_checksum("CRC32C")
    c.update(data[:3])
    c.update(data[3:])
    assert int.from_bytes(c.digest(), "big") == google_crc32c.value(data)


def test_names() -> None:
    assert normalize_algorithm(" crc64nvme ") == "CRC64NVME"
    assert new_checksum("sha256").algorithm == "SHA256"
    assert header_name("crc32c") == "x-amz-checksum-crc32c"
    assert header_name("CRC64NVME") == "x-amz-checksum-crc64nvme"
    assert algorithm_of_header("X-Amz-Checksum-SHA1") == "SHA1"
    assert algorithm_of_header("x-amz-checksum-md5") is None
    assert b64_checksum("crc32", b"123456789") == base64.b64encode(CHECK["CRC32"]).decode()


@pytest.mark.parametrize("bad", ["MD5", "crc16", "", "XXHASH64"])
def test_unknown_algorithm(bad: str) -> None:
    with pytest.raises(S3Error) as e:
        new_checksum(bad)
    assert e.value.code == "InvalidRequest"
    with pytest.raises(S3Error):
        header_name(bad)


# crc_combine: the CRC of A + B from crc(A), crc(B) and len(B), checked against the C libraries.

_CRCS = {
    "CRC32": zlib.crc32,
    "CRC32C": google_crc32c.value,
    "CRC64NVME": crt_checksums.crc64nvme,
}


@pytest.mark.parametrize("algorithm", sorted(_CRCS))
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6))
def test_crc_combine_over_random_splits(algorithm: str, data: bytes, cuts: list[int]) -> None:
    crc = _CRCS[algorithm]
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    combined = crc(b"")
    for piece in pieces:
        combined = crc_combine(combined, crc(piece), len(piece), algorithm)
    assert combined == crc(data)
    width = 8 if algorithm == "CRC64NVME" else 4
    sized = [(base64.b64encode(crc(p).to_bytes(width, "big")).decode(), len(p)) for p in pieces]
    assert combine_b64(algorithm, sized) == b64_checksum(algorithm, data)


@pytest.mark.parametrize("algorithm", sorted(_CRCS))
def test_crc_combine_large_lengths(algorithm: str) -> None:
    """Long B (the shift operator's squarings): zero runs of awkward sizes, and 5 GiB by algebra
    (appending n zero bytes to A and then B's is the same as B = zeros + B)."""
    crc = _CRCS[algorithm]
    a, b = os.urandom(1000), os.urandom(777)
    for zeros in (1, 255, 4096, 65537, 1 << 20):
        tail = bytes(zeros) + b
        assert crc_combine(crc(a), crc(tail), len(tail), algorithm) == crc(a + tail)
    # 8 GiB of zeros by doubling 1 MiB (each step a combine), then associativity across it:
    # (A + Z) + B == A + (Z + B), which exercises the shift operator's large powers.
    n, zeros_crc = 1 << 20, crc(bytes(1 << 20))
    for _ in range(13):
        zeros_crc, n = crc_combine(zeros_crc, zeros_crc, n, algorithm), 2 * n
    assert n == 8 << 30
    left = crc_combine(crc_combine(crc(a), zeros_crc, n, algorithm), crc(b), len(b), algorithm)
    right = crc_combine(crc(a), crc_combine(zeros_crc, crc(b), len(b), algorithm), n + len(b), algorithm)
    assert left == right
    assert crc_combine(crc(a), crc(b""), 0, algorithm) == crc(a)


def test_crc_combine_polynomials_and_errors() -> None:
    # the known check values of "123456789", reached through combining single bytes
    checks = {"CRC32": 0xCBF43926, "CRC32C": 0xE3069283, "CRC64NVME": 0xAE8B14860A799888}
    for algorithm, check in checks.items():
        crc = _CRCS[algorithm]
        value = crc(b"")
        for byte in b"123456789":
            value = crc_combine(value, crc(bytes([byte])), 1, algorithm)
        assert value == check, algorithm
    with pytest.raises(ValueError):
        crc_combine(0, 0, 1, "SHA256")
    with pytest.raises(ValueError):
        crc_combine(0, 0, -1, "CRC32")
    with pytest.raises(ValueError):
        combine_b64("CRC32", [("AAAAAAAAAAA=", 1)])  # 8 bytes, not 4


def test_checksum_type_rules() -> None:
    assert checksum_type_for("", "") == ""
    assert checksum_type_for("CRC32", "") == "COMPOSITE"
    assert checksum_type_for("CRC32C", "") == "COMPOSITE"
    assert checksum_type_for("SHA256", "") == "COMPOSITE"
    assert checksum_type_for("CRC64NVME", "") == "FULL_OBJECT"
    assert checksum_type_for("CRC32", "full_object") == "FULL_OBJECT"
    assert checksum_type_for("CRC32C", "COMPOSITE") == "COMPOSITE"
    for algorithm, kind in (
        ("SHA1", "FULL_OBJECT"),
        ("SHA256", "FULL_OBJECT"),
        ("CRC64NVME", "COMPOSITE"),
        ("CRC32", "BOTH"),
        ("", "FULL_OBJECT"),
    ):
        with pytest.raises(S3Error) as exc:
            checksum_type_for(algorithm, kind)
        assert exc.value.code == "InvalidRequest"
