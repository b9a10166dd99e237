"""Protocol-level failures (a request that cannot be parsed) answered as S3 XML errors."""

from __future__ import annotations

import secrets

from pails.api.http import Response
from pails.api.xml import error_document

_ERRORS = {
    "header-too-large": (
        400,
        "RequestHeaderSectionTooLarge",
        "Your request header section exceeds the maximum allowed size.",
    ),
    "bad-request": (400, "BadRequest", "An error occurred when parsing the HTTP request."),
    "internal-error": (500, "InternalError", "We encountered an internal error. Please try again."),
}


def protocol_error(kind: str) -> Response:
    status, code, text = _ERRORS.get(kind, _ERRORS["bad-request"])
    request_id = secrets.token_hex(8).upper()
    return Response(
        status=status,
        body=error_document(code, text, "", request_id, {}),
        headers={"Content-Type": "application/xml", "x-amz-request-id": request_id},
    )
