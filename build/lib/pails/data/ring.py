"""The placement ring: which nodes hold a chunk's replicas. Pure: no I/O, no clock, no randomness.

A `Ring` is a frozen value built from its nodes (`build_ring`). Each node gets virtual nodes
(vnodes) in proportion to its weight, `round(weight * vnodes_per_unit)` of them (at least one), at
the 64-bit positions `blake2b-64(node_id + "#" + index)`. A chunk's point is `blake2b-64(chunk id)`;
its replicas are found by walking clockwise from the first vnode at or after that point:

1. take a node whose zone is not yet used, until the replicas span `min(r, zones)` zones;
2. only if fewer than r zones exist, fill the rest clockwise with any node not yet taken.

Only `up` nodes receive new placements. `draining` nodes keep their vnodes (so they stay in the
preference list that readers and the rebalancer walk) but are skipped, which places chunks exactly
as if the node had already left: draining a node moves what its removal will move, once.

The replica set depends only on the vnode the walk starts at, so `arc_replicas` computes it once
per (vnode, r) and `replicas` is a hash, a bisect and a list look-up. Rings are deterministic:
the same nodes, in any order, give the same ring, and the JSON form stores only the nodes (the
positions are derived again on load).
"""

from __future__ import annotations

import array
import hashlib
import itertools
import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

NodeState = Literal["up", "draining"]
NODE_STATES: tuple[str, ...] = get_args(NodeState)

FORMAT = 1
HASH_NAME = "blake2b-64"
DEFAULT_VNODES_PER_UNIT = 256
_MAX_VNODES = 1 << 24


class RingError(ValueError):
    """An invalid ring description (bad weight, duplicate node, unknown format)."""


def point(key: bytes) -> int:
    """The 64-bit position of `key` on the ring (blake2b with an 8-byte digest, big-endian)."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def vnode_point(node_id: str, index: int) -> int:
    """The position of a node's `index`-th virtual node."""
    return point(f"{node_id}#{index}".encode())


@dataclass(frozen=True, slots=True)
class Node:
    node_id: str
    address: str
    zone: str
    weight: float
    state: NodeState = "up"

    def __post_init__(self) -> None:
        if not self.node_id:
            raise RingError("node_id must not be empty")
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight) and self.weight > 0):
            raise RingError(f"node {self.node_id}: weight must be a finite number > 0, not {self.weight!r}")
        if self.state not in NODE_STATES:
            raise RingError(f"node {self.node_id}: state must be one of {NODE_STATES}, not {self.state!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "zone": self.zone,
            "weight": self.weight,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        try:
            return cls(
                node_id=str(data["node_id"]),
                address=str(data["address"]),
                zone=str(data["zone"]),
                weight=float(data["weight"]),
                state=cast(NodeState, str(data.get("state", "up"))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RingError):
                raise
            raise RingError(f"bad node description {data!r}: {exc}") from exc


@dataclass(frozen=True)
class Ring:
    """A versioned placement ring. Build it with `build_ring`; compare, hash and serialise it as a value."""

    version: int
    nodes: tuple[Node, ...]
    vnodes_per_unit: int = DEFAULT_VNODES_PER_UNIT
    # Derived from the fields above in __post_init__ (never compared, never serialised).
    _points: array.array[int] = field(init=False, repr=False, compare=False)
    _owners: list[int] = field(init=False, repr=False, compare=False)
    _up: list[bool] = field(init=False, repr=False, compare=False)
    _zone_ids: list[int] = field(init=False, repr=False, compare=False)
    _up_count: int = field(init=False, repr=False, compare=False)
    _up_zones: int = field(init=False, repr=False, compare=False)
    _cache: dict[int, list[tuple[Node, ...] | None]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.version, int) or self.version < 0:
            raise RingError(f"version must be an int >= 0, not {self.version!r}")
        if not isinstance(self.vnodes_per_unit, int) or self.vnodes_per_unit < 1:
            raise RingError(f"vnodes_per_unit must be an int >= 1, not {self.vnodes_per_unit!r}")
        nodes = tuple(sorted(self.nodes, key=lambda n: n.node_id))
        for a, b in itertools.pairwise(nodes):
            if a.node_id == b.node_id:
                raise RingError(f"duplicate node_id {a.node_id!r}")
        total = sum(max(1, round(n.weight * self.vnodes_per_unit)) for n in nodes)
        if total > _MAX_VNODES:
            raise RingError(f"{total} virtual nodes is more than {_MAX_VNODES}: lower vnodes_per_unit")
        vnodes: list[tuple[int, int]] = []
        for index, node in enumerate(nodes):
            count = max(1, round(node.weight * self.vnodes_per_unit))
            vnodes.extend((vnode_point(node.node_id, i), index) for i in range(count))
        vnodes.sort()  # ties (never seen with 64-bit points) break on the node's rank: still deterministic
        zone_names = sorted({n.zone for n in nodes})
        zone_index = {z: i for i, z in enumerate(zone_names)}
        up = [n.state == "up" for n in nodes]
        setattr_ = object.__setattr__
        setattr_(self, "nodes", nodes)
        setattr_(self, "_points", array.array("Q", [p for p, _ in vnodes]))
        setattr_(self, "_owners", [o for _, o in vnodes])
        setattr_(self, "_up", up)
        setattr_(self, "_zone_ids", [zone_index[n.zone] for n in nodes])
        setattr_(self, "_up_count", sum(up))
        setattr_(self, "_up_zones", len({n.zone for n in nodes if n.state == "up"}))
        setattr_(self, "_cache", {})

    # -- look-ups -------------------------------------------------------------------------------

    @property
    def points(self) -> Sequence[int]:
        """The sorted vnode positions (an unsigned 64-bit array: a bisect over it touches contiguous
        memory, twice as fast as over a list of ints on a large ring). Read-only by contract."""
        return self._points

    @property
    def vnode_count(self) -> int:
        return len(self._points)

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({n.zone for n in self.nodes}))

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def arc(self, position: int) -> int:
        """Index of the first vnode at or after `position`, clockwise (wrapping past the top)."""
        i = bisect_left(self._points, position)
        return 0 if i == len(self._points) else i

    def replicas(self, chunk_id: bytes, r: int) -> tuple[Node, ...]:
        """The nodes for a new placement of `chunk_id`: min(r, up nodes) distinct `up` nodes, first
        replica first, spanning min(r, zones of up nodes) zones."""
        if not self._points:
            return ()
        return self.arc_replicas(self.arc(point(chunk_id)), r)

    def arc_replicas(self, arc: int, r: int) -> tuple[Node, ...]:
        """The replica set of every chunk whose walk starts at vnode `arc` (cached per arc and r)."""
        cache = self._cache.get(r)
        if cache is None:
            if r < 1:
                raise ValueError(f"r must be >= 1, not {r}")
            cache = self._cache.setdefault(r, [None] * len(self._points))
        found = cache[arc]
        if found is None:
            found = cache[arc] = tuple(self.nodes[k] for k in self._walk(arc, r))
        return found

    def preference_list(self, chunk_id: bytes, r: int) -> Iterator[Node]:
        """Every node of the ring once: the `r` replicas first, then the others (draining ones
        included) in clockwise order of first appearance -- the handoff order for hinted writes,
        and where to look for a chunk whose placement changed."""
        if not self._points:
            return
        start = self.arc(point(chunk_id))
        primaries = self.arc_replicas(start, r)
        yield from primaries
        seen = {n.node_id for n in primaries}
        owners, n_points, nodes = self._owners, len(self._points), self.nodes
        for step in range(n_points):
            node = nodes[owners[(start + step) % n_points]]
            if node.node_id not in seen:
                seen.add(node.node_id)
                yield node
                if len(seen) == len(nodes):
                    return

    def _walk(self, start: int, r: int) -> list[int]:
        owners, up, zone_ids = self._owners, self._up, self._zone_ids
        n_points = len(owners)
        want = min(r, self._up_count)
        want_zones = min(r, self._up_zones)
        chosen: list[int] = []
        if want == 0:
            return chosen
        used_zones: set[int] = set()
        # Pass 1: one node per zone, clockwise, until the set spans as many zones as it can.
        i = start
        for _ in range(n_points):
            k = owners[i]
            if up[k] and zone_ids[k] not in used_zones:
                chosen.append(k)
                used_zones.add(zone_ids[k])
                if len(used_zones) == want_zones:
                    break
            i = i + 1 if i + 1 < n_points else 0
        # Pass 2 (fewer zones than replicas): any node not taken yet, clockwise from the start.
        if len(chosen) < want:
            taken = set(chosen)
            i = start
            for _ in range(n_points):
                k = owners[i]
                if up[k] and k not in taken:
                    chosen.append(k)
                    taken.add(k)
                    if len(chosen) == want:
                        break
                i = i + 1 if i + 1 < n_points else 0
        return chosen

    # -- serialisation --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "hash": HASH_NAME,
            "version": self.version,
            "vnodes_per_unit": self.vnodes_per_unit,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ring:
        if data.get("format") != FORMAT or data.get("hash") != HASH_NAME:
            raise RingError(f"unknown ring format {data.get('format')!r} / hash {data.get('hash')!r}")
        try:
            nodes = [Node.from_dict(n) for n in data["nodes"]]
            return build_ring(
                nodes, version=int(data["version"]), vnodes_per_unit=int(data["vnodes_per_unit"])
            )
        except RingError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise RingError(f"bad ring description: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Ring:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RingError(f"ring JSON does not parse: {exc}") from exc
        if not isinstance(data, dict):
            raise RingError("ring JSON must be an object")
        return cls.from_dict(data)


def build_ring(
    nodes: Iterable[Node], *, version: int, vnodes_per_unit: int = DEFAULT_VNODES_PER_UNIT
) -> Ring:
    """The ring of `nodes` (in any order: the result does not depend on it)."""
    return Ring(version=version, nodes=tuple(nodes), vnodes_per_unit=vnodes_per_unit)


def replica_set(ring: Ring, chunk_id: bytes, r: int) -> frozenset[str]:
    """The node ids holding `chunk_id` (order ignored: what a rebalancer compares)."""
    return frozenset(n.node_id for n in ring.replicas(chunk_id, r))


def moved_share(old: Ring, new: Ring, sample_ids: Iterable[bytes], r: int) -> float:
    """The fraction of `sample_ids` whose replica set (as a set of node ids) differs between rings."""
    old_keys: dict[int, frozenset[str]] = {}
    new_keys: dict[int, frozenset[str]] = {}
    total = moved = 0
    for chunk_id in sample_ids:
        p = point(chunk_id)
        a, b = old.arc(p), new.arc(p)
        ka = old_keys.get(a)
        if ka is None:
            ka = old_keys[a] = frozenset(n.node_id for n in old.arc_replicas(a, r))
        kb = new_keys.get(b)
        if kb is None:
            kb = new_keys[b] = frozenset(n.node_id for n in new.arc_replicas(b, r))
        total += 1
        moved += ka != kb
    return moved / total if total else 0.0
