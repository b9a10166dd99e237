"""KeyIdListingPlan (multipart uploads by key then upload id) against a brute-force model."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pails.meta.listing import KeyIdListingPlan

KEYS = st.lists(st.sampled_from(["a", "a/b", "a/c", "b", "b/x/y", "c", "é/1"]), max_size=12)
IDS = st.sampled_from(["1", "2", "3"])


def run_plan(
    rows: list[tuple[str, str]], prefix: str, delimiter: str, marker: str, id_marker: str, limit: int
):
    ordered = sorted({(k.encode(), i) for k, i in rows})
    plan: KeyIdListingPlan[tuple[str, str]] = KeyIdListingPlan(prefix, delimiter, marker, id_marker, limit)
    batches = 0
    while not plan.done:
        batches += 1
        assert batches < 100
        batch = [r for r in ordered if r > (plan.after_key, plan.after_id)][:2]
        for key, row_id in batch:
            if not plan.offer(key, row_id, lambda key=key, row_id=row_id: (key.decode(), row_id)):
                break
        plan.end_batch(len(batch))
    return plan


def model(rows: list[tuple[str, str]], prefix: str, delimiter: str, marker: str, id_marker: str, limit: int):
    after = (marker.encode(), id_marker if marker and id_marker else "\U0010ffff")
    out: list[tuple[str, str] | str] = []
    for key, row_id in sorted({(k.encode(), i) for k, i in rows}):
        if (key, row_id) <= after or not key.startswith(prefix.encode()):
            continue
        cut = key.find(delimiter.encode(), len(prefix.encode())) if delimiter else -1
        item: tuple[str, str] | str = (
            key[: cut + len(delimiter)].decode() if cut >= 0 else (key.decode(), row_id)
        )
        if isinstance(item, str) and out and out[-1] == item:
            continue
        out.append(item)
    return out[:limit], limit > 0 and len(out) > limit  # max=0: empty, not truncated (as S3)


@settings(max_examples=300, deadline=None)
@given(
    keys=KEYS,
    ids=st.lists(IDS, min_size=12, max_size=12),
    prefix=st.sampled_from(["", "a", "a/", "b"]),
    delimiter=st.sampled_from(["", "/"]),
    marker=st.sampled_from(["", "a", "a/b", "b"]),
    id_marker=st.sampled_from(["", "1", "2"]),
    limit=st.integers(0, 5),
)
def test_plan_matches_model(keys, ids, prefix, delimiter, marker, id_marker, limit) -> None:
    rows = list(zip(keys, ids, strict=False))
    plan = run_plan(rows, prefix, delimiter, marker, id_marker, limit)
    expected, truncated = model(rows, prefix, delimiter, marker, id_marker, limit)
    got = sorted([*plan.items, *plan.prefixes], key=lambda x: (x if isinstance(x, str) else x[0]).encode())
    assert got == sorted(expected, key=lambda x: (x if isinstance(x, str) else x[0]).encode())
    assert plan.truncated == truncated
