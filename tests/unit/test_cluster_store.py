"""The cluster metadata (membership, versioned ring, repair queue, lease) on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pgtestdb import fresh_database

from pails.meta.cluster import ClusterStore, NodeExistsError, NoSuchNodeError, create_cluster_store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ClusterStore]:
    if request.param == "sqlite":
        s = create_cluster_store(f"sqlite://{tmp_path / 'meta.db'}")
        await s.open()
        try:
            yield s
        finally:
            await s.close()
        return
    async with fresh_database() as dsn:
        s = create_cluster_store(dsn)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


async def test_membership_changes_write_consecutive_ring_versions(store: ClusterStore) -> None:
    assert await store.rings() == []
    a, ring1 = await store.add_node("127.0.0.1:7001", "z1", 1.0)
    b, ring2 = await store.add_node("127.0.0.1:7002", "z2", 2.0)
    assert (ring1.version, ring2.version) == (1, 2)
    assert {n.node_id for n in ring2.nodes} == {a.node_id, b.node_id}
    with pytest.raises(NodeExistsError):
        await store.add_node("127.0.0.1:7001", "z9", 1.0)
    drained, ring3 = await store.set_node_state("127.0.0.1:7002", "draining")
    assert drained.node_id == b.node_id and drained.state == "draining"
    assert ring3.node(b.node_id).state == "draining"
    removed, ring4 = await store.set_node_state(a.node_id, "removed")
    assert removed.state == "removed"
    assert [n.node_id for n in ring4.nodes] == [b.node_id]
    with pytest.raises(NoSuchNodeError):
        await store.set_node_state(a.node_id, "draining")
    newest, previous = await store.rings(2)
    assert (newest.version, previous.version) == (4, 3)
    assert newest == ring4
    assert [n.node_id for n in await store.list_nodes()] == [b.node_id]
    assert len(await store.list_nodes(include_removed=True)) == 2
    # A removed node's address can join again, as a new node.
    again, _ = await store.add_node("127.0.0.1:7001", "z1", 1.0)
    assert again.node_id != a.node_id


async def test_concurrent_membership_changes_get_distinct_versions(store: ClusterStore) -> None:
    results = await asyncio.gather(*(store.add_node(f"127.0.0.1:{7100 + k}", "z", 1.0) for k in range(8)))
    assert sorted(ring.version for _, ring in results) == list(range(1, 9))
    assert len((await store.rings(1))[0].nodes) == 8


async def test_repair_queue(store: ClusterStore) -> None:
    await store.queue_repairs(
        [(b"\x01" * 16, "n1", "hint"), (b"\x02" * 16, "n1", "hint"), (b"\x03" * 16, "n2", "corrupt")]
    )
    assert await store.repair_backlog() == {"n1": 2, "n2": 1}
    items = await store.take_repairs(2)
    assert [(i.chunk_id, i.node_id, i.reason) for i in items] == [
        (b"\x01" * 16, "n1", "hint"),
        (b"\x02" * 16, "n1", "hint"),
    ]
    await store.ack_repairs([items[0].id])
    assert await store.repair_backlog() == {"n1": 1, "n2": 1}


async def test_lease_has_one_holder_until_it_expires(store: ClusterStore) -> None:
    assert await store.acquire_lease("bg", "g1", 10, now=1000.0)
    assert not await store.acquire_lease("bg", "g2", 10, now=1005.0)
    assert await store.acquire_lease("bg", "g1", 10, now=1005.0)  # renewal
    assert not await store.acquire_lease("bg", "g2", 10, now=1014.0)
    assert await store.acquire_lease("bg", "g2", 10, now=1016.0)  # expired: taken over
    assert not await store.acquire_lease("bg", "g1", 10, now=1017.0)
    await store.release_lease("bg", "g2")
    assert await store.acquire_lease("bg", "g1", 10, now=1018.0)
