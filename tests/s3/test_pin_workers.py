"""`pails server --workers 2 --pin-workers`: each worker is bound to its own CPU and serves S3."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from iamutil import client

pytestmark = [pytest.mark.needs_process]


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least two usable CPUs")
def test_each_worker_is_bound_to_one_cpu(start_server):
    srv = start_server(args=["--workers", "2", "--pin-workers"])
    assert srv.pid is not None
    workers = _children(srv.pid)
    assert len(workers) == 2
    allowed = sorted(os.sched_getaffinity(0))
    assert sorted(next(iter(os.sched_getaffinity(w))) for w in workers) == allowed[:2]
    assert all(len(os.sched_getaffinity(w)) == 1 for w in workers)
    assert os.sched_getaffinity(srv.pid) == set(allowed)  # the parent is not pinned

    s3 = client("s3", srv.endpoint, srv.access_key, srv.secret_key)
    s3.create_bucket(Bucket="pinned")
    for i in range(20):
        s3.put_object(Bucket="pinned", Key=f"k{i}", Body=b"x" * i)
    assert [o["Size"] for o in s3.list_objects_v2(Bucket="pinned")["Contents"]] == sorted(
        range(20), key=lambda i: f"k{i}"
    )
