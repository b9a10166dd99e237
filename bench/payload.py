"""Deterministic object contents, so a GET can be verified without remembering the PUT.

Small objects: the key itself followed by one of 64 pre-generated random blobs chosen by
CRC of the key (a server returning another key's bytes is caught).  Large objects: 1 MiB
chunks made of a per-key random block whose first 16 bytes are replaced by the chunk
index and a key digest; streamed on PUT and compared chunk by chunk on GET (memcmp, so
verification stays far cheaper than the transfer).
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import AsyncIterator
from functools import lru_cache

CHUNK = 1 << 20
_POOL = 64


@lru_cache(maxsize=8)
def _small_pool(size: int) -> tuple[bytes, ...]:
    rng = random.Random(f"pails-bench-{size}")
    return tuple(rng.randbytes(size) for _ in range(_POOL))


def small_body(key: str, size: int) -> bytes:
    """Deterministic pseudo-random contents of ``size`` bytes for ``key``."""
    if size == 0:
        return b""
    kb = key.encode()
    if len(kb) >= size:
        return kb[:size]
    blob = _small_pool(size)[zlib.crc32(kb) % _POOL]
    return kb + blob[len(kb) :]


class LargePattern:
    """Contents of a large object, addressable one 1 MiB chunk at a time."""

    def __init__(self, key: str, size: int) -> None:
        digest = hashlib.sha256(key.encode()).digest()
        self.size = size
        self._tag = digest[:8]
        self._block = random.Random(digest).randbytes(CHUNK)
        self.chunks = (size + CHUNK - 1) // CHUNK

    def chunk(self, i: int) -> bytes:
        length = min(CHUNK, self.size - i * CHUNK)
        data = struct.pack(">Q", i) + self._tag + self._block[16:length]
        return data[:length]

    async def stream(self) -> AsyncIterator[bytes]:
        for i in range(self.chunks):
            yield self.chunk(i)


class StreamVerifier:
    """Feed received bytes in any piece sizes; ``finish()`` says whether all matched."""

    def __init__(self, pattern: LargePattern) -> None:
        self.pattern = pattern
        self.received = 0
        self.ok = True
        self._buf = bytearray()
        self._index = 0

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if not self.ok:
            return
        buf = self._buf
        buf += data
        while len(buf) >= CHUNK:
            if self._index >= self.pattern.chunks or buf[:CHUNK] != self.pattern.chunk(self._index):
                self.ok = False
                buf.clear()
                return
            del buf[:CHUNK]
            self._index += 1

    def finish(self) -> bool:
        if self.ok and self._buf:
            self.ok = self._index < self.pattern.chunks and self._buf == self.pattern.chunk(self._index)
            self._index += 1
        elif self.ok and self._index < self.pattern.chunks and self.pattern.size > 0:
            self.ok = False
        return self.ok and self.received == self.pattern.size
