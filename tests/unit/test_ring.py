import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pails.data.ring import (
    Node,
    NodeState,
    Ring,
    RingError,
    build_ring,
    moved_share,
    point,
    replica_set,
)

_SPACE = 1 << 64


def nodes_for(count: int, zones: int, weights: tuple[float, ...] = (1.0,), prefix: str = "n") -> list[Node]:
    return [
        Node(f"{prefix}{i:03}", f"10.0.0.{i}:7070", f"z{i % zones}", weights[i % len(weights)])
        for i in range(count)
    ]


def chunk_ids(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(16) for _ in range(count)]


def exact_load(ring: Ring, r: int) -> dict[str, float]:
    """Expected replicas per node for one chunk, from the arc lengths (no sampling noise)."""
    pts = ring.points
    load: Counter[str] = Counter()
    for arc, p in enumerate(pts):
        share = ((p - pts[arc - 1]) % _SPACE) / _SPACE
        for node in ring.arc_replicas(arc, r):
            load[node.node_id] += share
    return dict(load)


def test_deterministic_regardless_of_input_order() -> None:
    nodes = nodes_for(40, 4, (1.0, 2.0, 4.0))
    shuffled = list(nodes)
    random.Random(3).shuffle(shuffled)
    a = build_ring(nodes, version=5, vnodes_per_unit=32)
    b = build_ring(shuffled, version=5, vnodes_per_unit=32)
    assert a == b
    assert list(a.points) == list(b.points)
    assert a.to_json() == b.to_json()
    for cid in chunk_ids(500):
        assert a.replicas(cid, 3) == b.replicas(cid, 3)
    # Pinned: positions are part of the on-disk contract (a change would move every chunk).
    assert point(b"") == int.from_bytes(bytes.fromhex("e4a6a0577479b2b4"), "big")


def test_vnodes_in_proportion_to_weight() -> None:
    ring = build_ring(nodes_for(3, 1, (1.0, 2.0, 4.0)), version=1, vnodes_per_unit=10)
    per_node = Counter(ring.nodes[k].weight for k in ring._owners)
    assert per_node == {1.0: 10, 2.0: 20, 4.0: 40}
    assert ring.vnode_count == 70
    tiny = build_ring([Node("a", "", "z", 0.01)], version=1, vnodes_per_unit=10)
    assert tiny.vnode_count == 1  # at least one


@pytest.mark.parametrize("r", [1, 2, 3, 5])
def test_replicas_are_distinct_up_nodes(r: int) -> None:
    ring = build_ring(nodes_for(12, 3, (1.0, 2.0)), version=1, vnodes_per_unit=16)
    for cid in chunk_ids(2000):
        got = ring.replicas(cid, r)
        assert len(got) == r
        assert len({n.node_id for n in got}) == r


def test_three_zones_r3_spans_three_zones() -> None:
    ring = build_ring(nodes_for(30, 3, (1.0, 2.0, 4.0)), version=1, vnodes_per_unit=32)
    for cid in chunk_ids(5000):
        assert {n.zone for n in ring.replicas(cid, 3)} == {"z0", "z1", "z2"}


def test_two_zones_r3_spans_both_zones() -> None:
    ring = build_ring(nodes_for(10, 2), version=1, vnodes_per_unit=32)
    for cid in chunk_ids(5000):
        got = ring.replicas(cid, 3)
        assert len({n.node_id for n in got}) == 3
        assert {n.zone for n in got} == {"z0", "z1"}


def test_one_zone_still_gives_distinct_nodes() -> None:
    ring = build_ring(nodes_for(5, 1), version=1, vnodes_per_unit=16)
    for cid in chunk_ids(500):
        assert len({n.node_id for n in ring.replicas(cid, 3)}) == 3


def test_first_replica_is_first_node_clockwise() -> None:
    ring = build_ring(nodes_for(20, 4), version=1, vnodes_per_unit=16)
    for cid in chunk_ids(500):
        p = point(cid)
        after = [i for i, q in enumerate(ring.points) if q >= p]
        first = after[0] if after else 0
        assert ring.replicas(cid, 3)[0] == ring.nodes[ring._owners[first]]


def test_load_proportional_to_weight() -> None:
    weights = (1.0, 2.0, 4.0)
    ring = build_ring(nodes_for(60, 5, weights), version=1, vnodes_per_unit=256)
    for r in (1, 3):
        load = exact_load(ring, r)
        assert sum(load.values()) == pytest.approx(r)
        per_unit = {n.node_id: load[n.node_id] / n.weight for n in ring.nodes}
        mean = sum(load.values()) / sum(n.weight for n in ring.nodes)
        for node in ring.nodes:
            assert per_unit[node.node_id] == pytest.approx(mean, rel=0.25), node
        by_weight = {w: sum(load[n.node_id] for n in ring.nodes if n.weight == w) for w in weights}
        assert by_weight[4.0] / by_weight[1.0] == pytest.approx(4.0, rel=0.08)
        assert by_weight[2.0] / by_weight[1.0] == pytest.approx(2.0, rel=0.08)


def test_sampled_placement_matches_weights() -> None:
    ring = build_ring(nodes_for(8, 8, (1.0, 3.0)), version=1, vnodes_per_unit=256)
    counts = Counter(ring.replicas(cid, 1)[0].weight for cid in chunk_ids(20000))
    assert counts[3.0] / counts[1.0] == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("n", [10, 40])
def test_adding_one_node_moves_about_one_in_n_plus_one(n: int) -> None:
    old_nodes = nodes_for(n, 1)
    old = build_ring(old_nodes, version=1, vnodes_per_unit=256)
    new = build_ring([*old_nodes, Node("new", "", "z0", 1.0)], version=2, vnodes_per_unit=256)
    ids = chunk_ids(20000)
    assert moved_share(old, new, ids, 1) == pytest.approx(1 / (n + 1), rel=0.25)
    # r=3: per replica ~1/(n+1), so a set changes with probability ~1-(1-1/(n+1))^3.
    assert moved_share(old, new, ids, 3) == pytest.approx(1 - (1 - 1 / (n + 1)) ** 3, rel=0.25)


def test_join_and_leave_move_only_what_they_must() -> None:
    """With zones: a changed set gains exactly the new node (one replica moves); a leave
    changes only the sets that held the leaving node, which is replaced by one node."""
    base_nodes = nodes_for(30, 4, (1.0, 2.0, 4.0))
    base = build_ring(base_nodes, version=1, vnodes_per_unit=64)
    join = build_ring([*base_nodes, Node("new", "", "z1", 2.0)], version=2, vnodes_per_unit=64)
    leave = build_ring(base_nodes[1:], version=3, vnodes_per_unit=64)
    gone = base_nodes[0].node_id
    changed_join = changed_leave = 0
    for cid in chunk_ids(5000):
        before = replica_set(base, cid, 3)
        after_join, after_leave = replica_set(join, cid, 3), replica_set(leave, cid, 3)
        if after_join != before:
            changed_join += 1
            assert "new" in after_join
            assert len(before - after_join) == 1
        if after_leave != before:
            changed_leave += 1
            assert before - after_leave == {gone}
            assert len(after_leave - before) == 1
        else:
            assert gone not in before
    assert changed_join > 0
    assert changed_leave > 0


def test_draining_node_gets_no_new_placements_but_stays_in_preference_list() -> None:
    nodes = nodes_for(12, 3, (1.0, 2.0))
    drained = nodes[4]
    with_drain = [
        Node(n.node_id, n.address, n.zone, n.weight, "draining") if n == drained else n for n in nodes
    ]
    ring = build_ring(with_drain, version=2, vnodes_per_unit=32)
    without = build_ring([n for n in nodes if n != drained], version=3, vnodes_per_unit=32)
    everyone = {n.node_id for n in nodes}
    for cid in chunk_ids(2000):
        got = ring.replicas(cid, 3)
        assert drained.node_id not in {n.node_id for n in got}
        assert got == without.replicas(cid, 3)  # draining places exactly as leaving will
        prefs = list(ring.preference_list(cid, 3))
        assert prefs[:3] == list(got)
        assert [n.node_id for n in prefs].count(drained.node_id) == 1
        assert {n.node_id for n in prefs} == everyone
        assert len(prefs) == len(everyone)


def test_preference_list_is_lazy_and_clockwise_after_primaries() -> None:
    ring = build_ring(nodes_for(50, 5), version=1, vnodes_per_unit=16)
    cid = chunk_ids(1)[0]
    it = ring.preference_list(cid, 3)
    head = [next(it) for _ in range(5)]
    assert tuple(head[:3]) == ring.replicas(cid, 3)
    assert len({n.node_id for n in head}) == 5


def test_fewer_up_nodes_than_replicas() -> None:
    nodes = [*nodes_for(2, 2), Node("d", "", "z9", 1.0, "draining")]
    ring = build_ring(nodes, version=1, vnodes_per_unit=8)
    for cid in chunk_ids(50):
        assert {n.node_id for n in ring.replicas(cid, 3)} == {"n000", "n001"}
    empty = build_ring([], version=1)
    assert empty.replicas(b"x", 3) == ()
    assert list(empty.preference_list(b"x", 3)) == []
    with pytest.raises(ValueError):
        ring.replicas(b"x", 0)


def test_json_round_trip() -> None:
    ring = build_ring(
        [*nodes_for(9, 3, (1.0, 2.5)), Node("d", "10.0.0.99:7070", "z1", 4.0, "draining")],
        version=42,
        vnodes_per_unit=20,
    )
    text = ring.to_json()
    back = Ring.from_json(text)
    assert back == ring
    assert back.version == 42 and back.vnodes_per_unit == 20
    assert list(back.points) == list(ring.points)
    assert back.node("d").state == "draining"
    for cid in chunk_ids(300):
        assert back.replicas(cid, 3) == ring.replicas(cid, 3)
    assert Ring.from_json(text.encode()) == ring
    assert back.to_json() == text


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"format": 2, "hash": "blake2b-64", "version": 1, "vnodes_per_unit": 1, "nodes": []}',
        '{"format": 1, "hash": "md5", "version": 1, "vnodes_per_unit": 1, "nodes": []}',
        '{"format": 1, "hash": "blake2b-64", "version": 1, "vnodes_per_unit": 1}',
        '{"format": 1, "hash": "blake2b-64", "version": "x", "vnodes_per_unit": 1, "nodes": []}',
        '{"format": 1, "hash": "blake2b-64", "version": 1, "vnodes_per_unit": 1, "nodes": [{"node_id": "a"}]}',
        '{"format": 1, "hash": "blake2b-64", "version": 1, "vnodes_per_unit": 1, '
        '"nodes": [{"node_id": "a", "address": "", "zone": "z", "weight": 1, "state": "gone"}]}',
    ],
)
def test_bad_json_is_rejected(text: str) -> None:
    with pytest.raises(RingError):
        Ring.from_json(text)


def test_validation() -> None:
    with pytest.raises(RingError):
        build_ring([Node("a", "", "z", 1.0), Node("a", "", "y", 1.0)], version=1)
    for weight in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(RingError):
            Node("a", "", "z", weight)
    with pytest.raises(RingError):
        Node("", "", "z", 1.0)
    with pytest.raises(RingError):
        build_ring([], version=-1)
    with pytest.raises(RingError):
        build_ring([], version=1, vnodes_per_unit=0)


_node_specs = st.lists(
    st.tuples(
        st.integers(0, 3), st.sampled_from([0.5, 1.0, 2.0, 4.0]), st.sampled_from(["up", "up", "draining"])
    ),
    min_size=1,
    max_size=9,
)


@settings(max_examples=60, deadline=None)
@given(specs=_node_specs, r=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_placement_invariants(specs: list[tuple[int, float, NodeState]], r: int, seed: int) -> None:
    nodes = [Node(f"n{i}", f"h{i}", f"z{zone}", w, state) for i, (zone, w, state) in enumerate(specs)]
    ring = build_ring(nodes, version=1, vnodes_per_unit=8)
    again = build_ring(reversed(nodes), version=1, vnodes_per_unit=8)
    up = [n for n in nodes if n.state == "up"]
    up_zones = {n.zone for n in up}
    for cid in chunk_ids(40, seed):
        got = ring.replicas(cid, r)
        assert got == again.replicas(cid, r)
        assert len(got) == min(r, len(up))
        assert len({n.node_id for n in got}) == len(got)
        assert all(n.state == "up" for n in got)
        assert len({n.zone for n in got}) == min(r, len(up_zones))
        prefs = list(ring.preference_list(cid, r))
        assert tuple(prefs[: len(got)]) == got
        assert sorted(n.node_id for n in prefs) == sorted(n.node_id for n in nodes)
