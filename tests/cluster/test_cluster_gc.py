"""GC on a cluster: replaced and deleted objects' chunks leave every node (after the read grace),
and the orphan sweep leaves queued chunks to the queue."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from clusterutil import Cluster, node_chunks, object_chunks, referenced_chunks

MiB = 1024 * 1024


def test_overwritten_and_deleted_chunks_leave_every_node(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(settings={"PAILS_GC_GRACE_SECONDS": "1"})
    s3 = c.s3()
    s3.create_bucket(Bucket="gcb")
    s3.put_object(Bucket="gcb", Key="over", Body=os.urandom(3 * MiB))
    s3.put_object(Bucket="gcb", Key="gone", Body=os.urandom(100_000))
    old = object_chunks(c, "gcb", ["over", "gone"])
    replaced = set(old["over"]) | set(old["gone"])
    new_body = os.urandom(2 * MiB)
    s3.put_object(Bucket="gcb", Key="over", Body=new_body)
    s3.delete_object(Bucket="gcb", Key="gone")
    time.sleep(1.5)
    # A scheduled pass: the replaced chunks wait for the read grace (a GET may still stream them).
    c.run_jobs("gc")
    for k in range(3):
        assert replaced <= set(node_chunks(c, k))
    # The admin trigger frees them at once, on every node.
    report = c.admin().call("POST", "gc")
    assert report["chunks_deleted"] == len(replaced)
    referenced = referenced_chunks(c)
    for k in range(3):
        held = set(node_chunks(c, k))
        assert not (held & replaced)
        assert held == referenced
    assert s3.get_object(Bucket="gcb", Key="over")["Body"].read() == new_body
