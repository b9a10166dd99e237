"""Decoder for ``Content-Encoding: aws-chunked`` request bodies.

Three framings, chosen by x-amz-content-sha256:

* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``::

      <hex size>;chunk-signature=<sig>\\r\\n<data>\\r\\n ... 0;chunk-signature=<sig>\\r\\n\\r\\n

  Each signature is an HMAC (with the request's signing key) of::

      AWS4-HMAC-SHA256-PAYLOAD\\n<amz date>\\n<scope>\\n<previous sig>\\n<sha256("")>\\n<sha256(data)>

  chained from the seed signature of the Authorization header.
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: the same, then trailer lines and a final
  ``x-amz-trailer-signature:<sig>`` line, signed as
  ``AWS4-HMAC-SHA256-TRAILER\\n<amz date>\\n<scope>\\n<last chunk sig>\\n<sha256(trailers)>`` where the
  trailers are canonicalised as ``name:value\\n`` lines.
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: ``<hex size>\\r\\n<data>\\r\\n ... 0\\r\\n<trailer lines>\\r\\n``.

Data is yielded as it arrives, in pieces of at most ``max_piece`` bytes, so memory stays bounded
whatever the chunk size. A chunk's signature can only be checked once the whole chunk has been read,
so pieces are yielded *before* their chunk is verified: the consumer must not commit anything until
:meth:`AwsChunkedDecoder.pieces` has finished without raising.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pails.errors import S3Error
from pails.iam.sigv4 import (
    EMPTY_SHA256,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
)

CHUNK_STRING_PREFIX = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_STRING_PREFIX = "AWS4-HMAC-SHA256-TRAILER"
TRAILER_SIGNATURE = "x-amz-trailer-signature"
MODES = (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER)

MAX_LINE = 4096
"""Longest chunk header or trailer line accepted."""
MAX_TRAILER_BYTES = 16 * 1024
DEFAULT_MAX_PIECE = 256 * 1024

_HEX_RE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIG_RE = re.compile(r"[0-9a-fA-F]{64}")


class ChunkReader(Protocol):
    """The subset of aiohttp's / asyncio's StreamReader that the decoder uses."""

    async def readline(self) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...

    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ChunkSigningContext:
    """What chunk signatures are chained from: the verified request's key, date, scope and signature."""

    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str


def chunk_signature(ctx: ChunkSigningContext, previous: str, data_sha256_hex: str) -> str:
    sts = f"{CHUNK_STRING_PREFIX}\n{ctx.amz_date}\n{ctx.scope}\n{previous}\n{EMPTY_SHA256}\n{data_sha256_hex}"
    return hmac.digest(ctx.signing_key, sts.encode("utf-8"), "sha256").hex()


def trailer_signature(ctx: ChunkSigningContext, previous: str, trailer_bytes: bytes) -> str:
    digest = hashlib.sha256(trailer_bytes).hexdigest()
    sts = f"{TRAILER_STRING_PREFIX}\n{ctx.amz_date}\n{ctx.scope}\n{previous}\n{digest}"
    return hmac.digest(ctx.signing_key, sts.encode("utf-8"), "sha256").hex()


def _incomplete(detail: str | None = None) -> S3Error:
    return S3Error("IncompleteBody", detail)


def _framing(detail: str) -> S3Error:
    return S3Error("InvalidRequest", f"Malformed aws-chunked body: {detail}")


class AwsChunkedDecoder:
    """Decode one aws-chunked body; iterate :meth:`pieces`, then read :attr:`trailers`."""

    def __init__(
        self,
        reader: ChunkReader,
        mode: str,
        signing: ChunkSigningContext | None = None,
        decoded_length: int | None = None,
        trailer_header: str | None = None,
        *,
        signing_key: bytes | None = None,
        amz_date: str | None = None,
        scope: str | None = None,
        seed_signature: str | None = None,
        max_piece: int = DEFAULT_MAX_PIECE,
    ) -> None:
        """``signing`` may also be given flat, as ``signing_key``/``amz_date``/``scope``/``seed_signature``.

        ``decoded_length`` is x-amz-decoded-content-length (None skips the length check);
        ``trailer_header`` is the x-amz-trailer value, naming trailers that must be present.
        """
        if signing is None and signing_key is not None:
            if amz_date is None or scope is None or seed_signature is None:
                raise ValueError("signing_key needs amz_date, scope and seed_signature")
            signing = ChunkSigningContext(signing_key, amz_date, scope, seed_signature)
        if mode not in MODES:
            raise S3Error("InvalidArgument", f"Unsupported aws-chunked mode {mode!r}")
        self._signed = mode != STREAMING_UNSIGNED_PAYLOAD_TRAILER
        if self._signed and signing is None:
            raise ValueError("signed aws-chunked modes need a ChunkSigningContext")
        self._reader = reader
        self._mode = mode
        self._ctx = signing
        self._expect_trailer = mode != STREAMING_PAYLOAD
        self._declared = decoded_length
        self._declared_trailers = tuple(
            t.strip().lower() for t in (trailer_header or "").split(",") if t.strip()
        )
        self._max_piece = max_piece
        self._previous = signing.seed_signature.lower() if signing is not None else ""
        self.trailers: dict[str, str] = {}
        """Trailing headers (lower-case names), filled in once :meth:`pieces` is exhausted."""
        self.decoded_bytes = 0
        self.done = False

    # ---------------------------------------------------------------- low level reads

    async def _line(self, *, eof_ok: bool) -> bytes | None:
        """One line without its line ending; None at a clean EOF (when allowed)."""
        try:
            raw = await self._reader.readline()
        except ValueError as exc:  # line longer than the reader's limit
            raise _framing("line too long") from exc
        if not raw:
            if eof_ok:
                return None
            raise _incomplete()
        if len(raw) > MAX_LINE:
            raise _framing("line too long")
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        elif not eof_ok:
            raise _incomplete()
        return raw

    def _parse_size_line(self, line: bytes) -> tuple[int, str | None]:
        size_part, _, ext = line.partition(b";")
        size_part = size_part.strip()
        if not _HEX_RE.fullmatch(size_part):
            raise _framing(f"bad chunk size line {line[:80]!r}")
        size = int(size_part, 16)
        if not self._signed:
            return size, None
        signature: str | None = None
        for item in ext.split(b";"):
            name, _, value = item.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("ascii", "replace")
        if signature is None:
            raise _framing("chunk-signature missing")
        return size, signature

    def _check_chunk_signature(self, provided: str | None, data_sha256_hex: str) -> None:
        assert self._ctx is not None
        expected = chunk_signature(self._ctx, self._previous, data_sha256_hex)
        if provided is None or not hmac.compare_digest(expected, provided.lower()):
            raise S3Error("SignatureDoesNotMatch")
        self._previous = expected

    # ---------------------------------------------------------------- decoding

    async def pieces(self) -> AsyncIterator[bytes]:
        """Yield the decoded payload piece by piece; raise :class:`S3Error` on any defect."""
        reader = self._reader
        max_piece = self._max_piece
        signed = self._signed
        declared = self._declared
        while True:
            line = await self._line(eof_ok=False)
            assert line is not None
            if not line:
                # Tolerate a stray blank line between chunks.
                continue
            size, signature = self._parse_size_line(line)
            if size == 0:
                if signed:
                    self._check_chunk_signature(signature, EMPTY_SHA256)
                break
            if declared is not None and self.decoded_bytes + size > declared:
                raise S3Error(
                    "InvalidRequest",
                    f"The decoded body is longer than x-amz-decoded-content-length ({declared} bytes)",
                )
            hasher = hashlib.sha256() if signed else None
            remaining = size
            while remaining:
                piece = await reader.read(min(remaining, max_piece))
                if not piece:
                    raise _incomplete()
                remaining -= len(piece)
                if hasher is not None:
                    hasher.update(piece)
                self.decoded_bytes += len(piece)
                yield piece
            try:
                crlf = await reader.readexactly(2)
            except asyncio.IncompleteReadError as exc:
                raise _incomplete() from exc
            if crlf != b"\r\n":
                raise _framing("chunk data not followed by CRLF")
            if hasher is not None:
                self._check_chunk_signature(signature, hasher.hexdigest())

        if declared is not None and self.decoded_bytes != declared:
            raise _incomplete(
                f"The decoded body has {self.decoded_bytes} bytes but x-amz-decoded-content-length "
                f"says {declared}."
            )
        if self._expect_trailer:
            await self._read_trailers()
        else:
            await self._read_end()
        self.done = True

    async def _read_end(self) -> None:
        line = await self._line(eof_ok=True)
        if line:
            raise _framing("unexpected data after the final chunk")

    async def _read_trailers(self) -> None:
        lines: list[tuple[bytes, str, str]] = []
        signature: str | None = None
        total = 0
        while True:
            line = await self._line(eof_ok=True)
            if not line:  # blank line or EOF: end of the trailer section
                break
            total += len(line)
            if total > MAX_TRAILER_BYTES:
                raise _framing("trailer section too large")
            name_b, colon, value_b = line.partition(b":")
            if not colon:
                raise _framing(f"bad trailer line {line[:80]!r}")
            name = name_b.strip().decode("latin-1").lower()
            value = value_b.strip().decode("latin-1")
            if name == TRAILER_SIGNATURE:
                signature = value
                # The signature ends the trailer; the blank line after it is optional.
                if await self._line(eof_ok=True):
                    raise _framing("unexpected data after the trailer signature")
                break
            lines.append((line, name, value))

        if self._signed:
            self._check_trailer_signature(lines, signature)
        trailers = {name: value for _, name, value in lines}
        for name in self._declared_trailers:
            if name not in trailers:
                raise S3Error(
                    "InvalidRequest",
                    f"The trailing header {name} was declared in x-amz-trailer but was not sent.",
                )
        self.trailers = trailers

    def _check_trailer_signature(self, lines: list[tuple[bytes, str, str]], provided: str | None) -> None:
        assert self._ctx is not None
        if provided is None or not _SIG_RE.fullmatch(provided):
            raise S3Error("SignatureDoesNotMatch", "The trailer signature is missing or malformed.")
        provided = provided.lower()
        canonical = "".join(f"{n}:{v}\n" for _, n, v in lines).encode("latin-1")
        candidates = [canonical]
        ordered = "".join(f"{n}:{v}\n" for _, n, v in sorted(lines, key=lambda t: t[1])).encode("latin-1")
        if ordered != canonical:
            candidates.append(ordered)
        candidates.append(b"".join(raw + b"\r\n" for raw, _, _ in lines))
        for candidate in candidates:
            expected = trailer_signature(self._ctx, self._previous, candidate)
            if hmac.compare_digest(expected, provided):
                self._previous = expected
                return
        raise S3Error("SignatureDoesNotMatch", "The trailer signature does not match.")


async def read_all(decoder: AwsChunkedDecoder) -> bytes:
    """Convenience for small bodies and tests: the whole decoded payload."""
    return b"".join([piece async for piece in decoder.pieces()])
