"""pails.checksums against botocore's own checksum classes and published check values."""

from __future__ import annotations

import base64
import itertools
import os

import google_crc32c
import pytest
from botocore import httpchecksum as bc
from hypothesis import given, settings
from hypothesis import strategies as st

from pails.checksums import (
    ALGORITHMS,
    algorithm_of_header,
    b64_checksum,
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
