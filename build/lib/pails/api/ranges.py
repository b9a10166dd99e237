"""HTTP Range header for S3 GET: one range of bytes=a-b, a- or -n."""

from __future__ import annotations

from pails.errors import S3Error


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (start, end_exclusive), or None to send the whole object.

    Like S3, a syntactically invalid or multi-range header is ignored (whole object), and a
    range that starts past the end is InvalidRange (416).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0:
            raise _invalid(header, size)
        return max(size - suffix, 0), size
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if last != "" and end < start:
        return None
    if start >= size:
        raise _invalid(header, size)
    return start, min(end, size - 1) + 1


def _invalid(header: str, size: int) -> S3Error:
    return S3Error(
        "InvalidRange",
        extra={"RangeRequested": header, "ActualObjectSize": str(size)},
        headers={"Content-Range": f"bytes */{size}"},
    )
