"""Cluster metadata: membership, the versioned ring, the repair queue and the background lease.

Both metadata backends implement `ClusterStore` (pails/meta/cluster_sqlite.py and
cluster_postgres.py) next to the object metadata, in the same database. Every membership change
writes the next ring version in the same transaction, so the ring in the database always matches
the node table (decision 0016).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pails.data.ring import DEFAULT_VNODES_PER_UNIT, Node, Ring, build_ring

MemberState = Literal["active", "draining", "removed"]
MEMBER_STATES = ("active", "draining", "removed")


class NoSuchNodeError(Exception):
    """No live node with this id or address."""


class NodeExistsError(Exception):
    """A live node already has this address."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node_id: str
    address: str
    zone: str
    weight: float
    state: MemberState
    added_at: float
    changed_at: float

    def to_dict(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "zone": self.zone,
            "weight": self.weight,
            "state": self.state,
            "added_at": self.added_at,
            "changed_at": self.changed_at,
        }


@dataclass(frozen=True, slots=True)
class RepairItem:
    id: int
    chunk_id: bytes
    node_id: str
    reason: str
    queued_at: float


def new_node_id() -> str:
    return "n" + secrets.token_hex(5)


def ring_of(records: Iterable[NodeRecord], version: int) -> Ring:
    """The ring of the live nodes: active ones take placements, draining ones only keep their
    vnodes (ring state "draining"), removed ones are gone."""
    nodes = [
        Node(r.node_id, r.address, r.zone, r.weight, "up" if r.state == "active" else "draining")
        for r in records
        if r.state != "removed"
    ]
    return build_ring(nodes, version=version, vnodes_per_unit=DEFAULT_VNODES_PER_UNIT)


def check_weight(weight: float) -> None:
    if not (weight > 0 and weight < 1e6):
        raise ValueError(f"weight must be > 0 and < 1e6, not {weight}")


class ClusterStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def list_nodes(self, *, include_removed: bool = False) -> list[NodeRecord]: ...

    async def add_node(self, address: str, zone: str, weight: float) -> tuple[NodeRecord, Ring]:
        """Register a node (active) and write the next ring; NodeExistsError for a live address."""
        ...

    async def set_node_state(self, ref: str, state: MemberState) -> tuple[NodeRecord, Ring]:
        """Drain or remove a node (by id or address) and write the next ring; NoSuchNodeError."""
        ...

    async def rings(self, limit: int = 2) -> list[Ring]:
        """The newest rings, newest first (empty before the first node is added)."""
        ...

    async def queue_repairs(self, items: Sequence[tuple[bytes, str, str]]) -> None:
        """Queue (chunk id, node id, reason) replicas to re-create."""
        ...

    async def take_repairs(self, limit: int) -> list[RepairItem]: ...

    async def ack_repairs(self, ids: Sequence[int]) -> None: ...

    async def repair_backlog(self) -> dict[str, int]:
        """Queued repairs per node id."""
        ...

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        """Take or renew the lease `name` for `holder` until now + ttl; False if another holds it."""
        ...

    async def release_lease(self, name: str, holder: str) -> None: ...


def create_cluster_store(metadata_url: str) -> ClusterStore:
    """The cluster store in the same database as the object metadata at `metadata_url`."""
    from pails.meta.factory import create_metadata_store

    meta = create_metadata_store(metadata_url)  # parses the URL: the same rules and errors
    from pails.meta.postgres import PostgresMetadataStore
    from pails.meta.sqlite import SqliteMetadataStore

    if isinstance(meta, SqliteMetadataStore):
        from pails.meta.cluster_sqlite import SqliteClusterStore

        return SqliteClusterStore(meta.path)
    if isinstance(meta, PostgresMetadataStore):
        from pails.meta.cluster_postgres import PostgresClusterStore

        return PostgresClusterStore(meta.dsn)
    raise ValueError(f"no cluster store for {type(meta).__name__}")
