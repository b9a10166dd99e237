"""Versioned buckets for tests: create one with versioning Enabled, and empty it of every version."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError
from conftest import unique_bucket_name


def empty_versions(s3: Any, name: str) -> None:
    """Delete every version and delete marker of a bucket."""
    for _ in range(20):  # bounded: 20 pages of 1,000 is plenty for a test bucket
        resp = s3.list_object_versions(Bucket=name)
        items = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in resp.get("Versions", []) + resp.get("DeleteMarkers", [])
        ]
        if not items:
            break
        s3.delete_objects(Bucket=name, Delete={"Objects": items[:1000], "Quiet": True})


@contextlib.contextmanager
def versioned_bucket(s3: Any, prefix: str) -> Iterator[str]:
    """A bucket with versioning Enabled, emptied of every version and deleted afterwards."""
    name = unique_bucket_name(prefix)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    try:
        yield name
    finally:
        with contextlib.suppress(ClientError):
            empty_versions(s3, name)
            s3.delete_bucket(Bucket=name)
