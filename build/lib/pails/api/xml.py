"""S3 XML: rendering responses (string building with escaping) and parsing untrusted request bodies."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pails.errors import S3Error
from pails.limits import MAX_XML_BODY_BYTES

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}
_NEEDS_ESCAPE = re.compile(r"[&<>\"'\r\x00-\x08\x0b\x0c\x0e-\x1f]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    return _ESCAPES.get(char) or f"&#x{ord(char):x};"


def escape(text: str) -> str:
    """Escape for XML text; control characters as numeric references, as S3 does."""
    return _NEEDS_ESCAPE.sub(_escape_char, text)


def url_encode(text: str) -> str:
    """encoding-type=url: S3 percent-encodes keys like a form value (safe '/', space as '+')."""
    return quote(text, safe="/").replace("%20", "+")


def iso8601(ts: float) -> str:
    """2026-11-25T13:14:24.000Z (S3's XML timestamp form)."""
    millis = int(ts * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{millis:03d}Z"


_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def element_text_only(name: str, value: str) -> str:
    """An element whose text drops characters XML 1.0 cannot carry at all (for error documents,
    which every client must be able to parse whatever key it sent)."""
    return element(name, _XML_INVALID.sub("\ufffd", value))


def element(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, parts: Iterable[str]) -> bytes:
    return (XML_DECL + f'<{root} xmlns="{S3_NS}">' + "".join(parts) + f"</{root}>").encode()


def error_document(code: str, message: str, resource: str, request_id: str, extra: dict[str, str]) -> bytes:
    parts = [element("Code", code), element_text_only("Message", message)]
    if resource:
        parts.append(element_text_only("Resource", resource))
    parts.extend(element_text_only(k, v) for k, v in extra.items())
    parts.append(element("RequestId", request_id))
    return (XML_DECL + "<Error>" + "".join(parts) + "</Error>").encode()


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes) -> Element:
    """Parse an untrusted XML request body; any fault is MalformedXML, never a crash or an entity bomb."""
    if len(body) > MAX_XML_BODY_BYTES:
        raise S3Error("MalformedXML")
    try:
        root: Element = SafeET.fromstring(body)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise S3Error("MalformedXML") from exc
    return root


def child(node: Element, name: str) -> Element | None:
    for sub in node:
        if local_name(sub.tag) == name:
            return sub
    return None


def children(node: Element, name: str) -> list[Element]:
    return [sub for sub in node if local_name(sub.tag) == name]


def text_of(node: Element, name: str) -> str | None:
    sub = child(node, name)
    if sub is None:
        return None
    return sub.text or ""
