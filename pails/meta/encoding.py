"""Value encodings shared by the metadata backends: manifests, JSON maps and part sizes."""

from __future__ import annotations

import json
import json.scanner
import struct
from collections.abc import Iterable, Iterator
from typing import Any, cast

from pails.meta.models import ChunkRef

_MANIFEST_ITEM = struct.Struct(">16sQ")  # chunk id, size


def encode_manifest(manifest: Iterable[ChunkRef]) -> bytes:
    """24 bytes per chunk: the 16-byte id, then the size as an unsigned 64-bit big-endian integer."""
    out = bytearray()
    for ref in manifest:
        if len(ref.chunk_id) != 16:
            raise ValueError(f"a chunk id is 16 bytes, got {len(ref.chunk_id)}")
        out += _MANIFEST_ITEM.pack(ref.chunk_id, ref.size)
    return bytes(out)


def decode_manifest(blob: bytes) -> tuple[ChunkRef, ...]:
    if len(blob) == _MANIFEST_ITEM.size:  # a small object: one chunk
        chunk_id, size = _MANIFEST_ITEM.unpack(blob)
        return (ChunkRef(chunk_id, size),)
    return tuple(ChunkRef(chunk_id, size) for chunk_id, size in _MANIFEST_ITEM.iter_unpack(blob))


def manifest_chunk_ids(blob: bytes) -> Iterator[bytes]:
    """The chunk ids of an encoded manifest, without decoding the sizes."""
    for offset in range(0, len(blob), _MANIFEST_ITEM.size):
        yield blob[offset : offset + 16]


def dumps(value: dict[str, str]) -> str:
    if not value:
        return "{}"  # most objects carry no metadata: skip the encoder
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# The C scanner behind json.loads, without its Python layers (~4x faster on a small map): dumps
# writes no whitespace, so a well-formed value ends exactly at the end of the text.
_scan_json = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))  # typeshed: context: make_scanner


def loads(text: str) -> dict[str, str]:
    if text == "{}":
        return {}
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        value, end = None, -1
    if end != len(text) or not isinstance(value, dict):
        value = json.loads(text)  # anything else: json's own parse (and its error)
    return cast(dict[str, str], value)


def dumps_sizes(sizes: tuple[int, ...]) -> str:
    """Part sizes as a JSON array ("[]" for an object written in one piece)."""
    if not sizes:
        return "[]"
    return json.dumps(list(sizes), separators=(",", ":"))


def loads_sizes(text: str) -> tuple[int, ...]:
    if text == "[]":
        return ()
    return tuple(int(size) for size in json.loads(text))
