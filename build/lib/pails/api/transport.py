"""aiohttp's low-level server, with protocol-level failures answered as S3 XML errors."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from pails.api.xml import error_document


class S3RequestHandler(web.RequestHandler):
    """Malformed or oversized request heads never reach Pails' handler; answer them like S3 does."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; closing the connection")
        if isinstance(exc, LineTooLong) or (
            isinstance(exc, BadHttpMessage) and "too large" in str(exc).lower()
        ):
            code, text = (
                "RequestHeaderSectionTooLarge",
                "Your request header section exceeds the maximum allowed size.",
            )
            status = 400
        elif status < 500:
            code, text = "BadRequest", "An error occurred when parsing the HTTP request."
        else:
            code, text = "InternalError", "We encountered an internal error. Please try again."
        request_id = secrets.token_hex(8).upper()
        body = error_document(code, text, "", request_id, {})
        response = web.Response(
            status=status,
            body=body,
            headers={"Content-Type": "application/xml", "x-amz-request-id": request_id},
        )
        response.force_close()
        return response


class S3Server(web.Server):
    def __call__(self) -> web.RequestHandler:
        kwargs: dict[str, Any] = dict(self._kwargs)
        return S3RequestHandler(self, loop=self._loop, **kwargs)
