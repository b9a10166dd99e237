"""Until the PostgreSQL store implements the multipart / copy / conditional-write methods of the
MetadataStore protocol, the S3-breadth tests skip on that backend (they run as soon as it does)."""

from __future__ import annotations

import pytest

_METHODS = ("create_upload", "put_part", "complete_upload", "abort_upload", "list_uploads", "list_parts")


def skip_unless_supported(backend: str) -> None:
    if backend != "postgres":
        return
    from pails.meta.postgres import PostgresMetadataStore

    missing = [name for name in _METHODS if not hasattr(PostgresMetadataStore, name)]
    if missing:
        pytest.skip(f"the PostgreSQL store does not implement {', '.join(missing)} yet")
