"""The body of a PUT as a stream of decoded bytes, whatever payload mode the client chose."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pails.api.chunked import AwsChunkedDecoder
from pails.api.context import RequestContext
from pails.api.http import Request
from pails.errors import S3Error

_STREAMING_MODES = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
)


class RequestBody:
    def __init__(self, ctx: RequestContext) -> None:
        self._request: Request = ctx.request
        headers = self._request.lower_headers
        payload_hash = ctx.auth.payload_hash if ctx.auth is not None else "UNSIGNED-PAYLOAD"
        self.expected_sha256: str | None = ctx.auth.payload_sha256 if ctx.auth is not None else None
        self.trailers: dict[str, str] = {}
        self._decoder: AwsChunkedDecoder | None = None
        if payload_hash in _STREAMING_MODES:
            decoded = headers.get("x-amz-decoded-content-length")
            if decoded is None:
                raise S3Error("MissingContentLength")
            self.size: int | None = _parse_length(decoded)
            assert ctx.auth is not None
            self._decoder = AwsChunkedDecoder(
                self._request.content,
                mode=payload_hash,
                signing_key=ctx.signing_key,
                amz_date=ctx.auth.amz_date,
                scope=ctx.auth.credential_scope,
                seed_signature=ctx.auth.signature,
                decoded_length=self.size,
                trailer_header=headers.get("x-amz-trailer"),
            )
        else:
            raw_length = headers.get("content-length")
            if raw_length is None:
                raise S3Error("MissingContentLength")
            self.size = _parse_length(raw_length)

    async def continue_if_expected(self) -> None:
        """Answer Expect: 100-continue once the request was found acceptable."""
        if self._request.lower_headers.get("expect", "").lower() == "100-continue":
            self._request.send_continue()

    async def pieces(self) -> AsyncIterator[bytes]:
        if self._decoder is not None:
            async for piece in self._decoder.pieces():
                yield piece
            self.trailers = self._decoder.trailers
            return
        received = 0
        stream = self._request.content
        try:
            async for piece in stream.iter_any():
                received += len(piece)
                yield piece
        except (ConnectionError, OSError, ValueError, RuntimeError) as exc:
            raise S3Error("IncompleteBody") from exc
        if self.size is not None and received != self.size:
            raise S3Error("IncompleteBody")


def _parse_length(raw: str) -> int:
    if not raw.strip().isdigit():
        raise S3Error("InvalidArgument", "Content-Length must be a non-negative integer.")
    return int(raw)


def request_body(ctx: RequestContext) -> RequestBody:
    return RequestBody(ctx)
