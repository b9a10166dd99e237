"""The AWS query protocol (IAM, STS): Action=...&Version=... as a form body or a query string in,
XML out (<{Action}Response><{Action}Result>...</...><ResponseMetadata>), and <ErrorResponse>."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, quote

from pails.api.xml import XML_DECL, element, escape
from pails.iam.iam_errors import IamError

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
MAX_BODY_BYTES = 256 * 1024


def parse_params(body: bytes, raw_query: str) -> dict[str, str]:
    """The request's parameters: the query string's, then the form body's (which win)."""
    params = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise IamError("InvalidInput", "The request body is not UTF-8 form data.") from None
        params.update(parse_qsl(text, keep_blank_values=True))
    for name in [n for n in params if n.startswith("X-Amz-")]:
        del params[name]  # presigned-URL authentication, not parameters
    return params


def members(name: str, items: Iterable[str]) -> str:
    """A list: <Name><member>...</member>...</Name> (each item already rendered)."""
    return f"<{name}>" + "".join(f"<member>{item}</member>" for item in items) + f"</{name}>"


def fields(values: dict[str, object]) -> str:
    """Elements in order; None values are left out."""
    return "".join(element(k, v) for k, v in values.items() if v is not None)


def policy_text(document: str) -> str:
    """Policy documents travel URL-encoded (RFC 3986), as IAM sends them; botocore decodes them."""
    return quote(document, safe="")


def response(action: str, namespace: str, result: str | None, request_id: str) -> bytes:
    inner = f"<{action}Result>{result}</{action}Result>" if result is not None else ""
    return (
        XML_DECL
        + f'<{action}Response xmlns="{namespace}">{inner}'
        + f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        + f"</{action}Response>"
    ).encode()


def error(err: IamError, namespace: str, request_id: str) -> bytes:
    kind = "Receiver" if err.status >= 500 else "Sender"
    return (
        XML_DECL
        + f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        + element("Code", err.code)
        + element("Message", err.message)
        + f"</Error>{element('RequestId', request_id)}</ErrorResponse>"
    ).encode()
