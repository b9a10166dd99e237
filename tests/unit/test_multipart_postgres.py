"""The multipart / shared-chunk / conditional-write store tests of test_multipart_store.py, run
against PostgresMetadataStore: the same test functions, collected here with a PostgreSQL `store`.

(Once test_multipart_store.py settles, its `store` fixture can be parametrized over both backends
like test_metadata_store.py's, and this module removed.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pgtestdb import fresh_database
from test_multipart_store import (
    test_conditional_put,
    test_delete_bucket_drops_uploads,
    test_finished_uploads_are_purged_after_retention,
    test_shared_chunks_are_freed_with_their_last_reference,
    test_upload_checksum_type_round_trip,
    test_upload_lifecycle_and_references,
)

from pails.meta.postgres import PostgresMetadataStore

__all__ = [
    "test_conditional_put",
    "test_delete_bucket_drops_uploads",
    "test_finished_uploads_are_purged_after_retention",
    "test_shared_chunks_are_freed_with_their_last_reference",
    "test_upload_checksum_type_round_trip",
    "test_upload_lifecycle_and_references",
]


@pytest.fixture
async def store() -> AsyncIterator[PostgresMetadataStore]:
    async with fresh_database() as dsn:
        s = PostgresMetadataStore(dsn, pool_min=1, pool_max=4)
        await s.open()
        try:
            yield s
        finally:
            await s.close()
