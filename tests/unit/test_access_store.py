"""What the metadata stores keep for authorization, on every backend (SQLite and PostgreSQL):
bucket policy, ACL and PublicAccessBlock, object ACLs as part of a version (written with it,
replaced in place, carried from an upload to the completed object)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_metadata_store import BACKENDS, Store, chunk, open_store, version

from pails.meta.models import Part, Upload
from pails.meta.store import NoSuchBucketError

ACL = '{"owner":"o","owner_name":"","grants":[["Group","http://acs.amazonaws.com/groups/global/AllUsers","READ"]]}'


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(backend, tmp_path) as s:
        yield s


async def test_bucket_policy_acl_and_public_access_block(store: Store) -> None:
    b = await store.create_bucket("acc", "owner", "us-east-1")
    access = await store.get_bucket_access("acc")
    assert access is not None and access.bucket == b
    assert (access.policy, access.acl, access.public_access_block) == (None, None, None)
    await store.set_bucket_policy(b.id, '{"Version": "2012-10-17", "Statement": []}')
    await store.set_bucket_acl(b.id, ACL)
    await store.set_public_access_block(b.id, '{"BlockPublicAcls":true}')
    access = await store.get_bucket_access("acc")
    assert access is not None
    assert access.policy == '{"Version": "2012-10-17", "Statement": []}'  # verbatim
    assert access.acl is not None and json.loads(access.acl) == json.loads(ACL)  # jsonb may reorder
    assert access.public_access_block == '{"BlockPublicAcls":true}'
    await store.set_bucket_policy(b.id, None)
    await store.set_public_access_block(b.id, None)
    access = await store.get_bucket_access("acc")
    assert access is not None and access.policy is None and access.public_access_block is None
    assert await store.get_bucket_access("nope") is None
    with pytest.raises(NoSuchBucketError):
        await store.set_bucket_policy(10_000, "{}")


async def test_object_acl_belongs_to_its_version(store: Store) -> None:
    b = await store.create_bucket("acl-obj", "owner", "us-east-1")
    await store.put_object(version(b.id, "k", acl=ACL, manifest=(chunk(),)))
    got = await store.get_object(b.id, "k")
    assert got is not None and got.acl == ACL
    assert await store.set_object_acl(b.id, "k", None, "") == "null"
    got = await store.get_object(b.id, "k")
    assert got is not None and got.acl == ""
    assert await store.set_object_acl(b.id, "k", "null", ACL) == "null"
    await store.put_object(version(b.id, "k", lm=2e9))  # an overwrite has its own (default) ACL
    got = await store.get_object(b.id, "k")
    assert got is not None and got.acl == ""
    assert await store.set_object_acl(b.id, "missing", None, ACL) is None


async def test_completed_upload_carries_its_acl(store: Store) -> None:
    b = await store.create_bucket("acl-mpu", "owner", "us-east-1")
    await store.create_upload(Upload(b.id, "big", "u1", 1.0, acl=ACL))
    got = await store.get_upload(b.id, "u1")
    assert got is not None and got.acl == ACL
    await store.put_part(Part(b.id, "u1", 1, 3, "a" * 32, 2.0, manifest=(chunk(),)))
    await store.complete_upload(b.id, "u1", "big", [(1, "a" * 32, {})], last_modified=3.0, min_part_size=0)
    stored = await store.get_object(b.id, "big")
    assert stored is not None and stored.acl == ACL
