"""A gateway's memory does not grow with object size: it holds one chunk per write in progress."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from clusterutil import Cluster

MiB = 1024 * 1024
SIZE = 256 * MiB


class _Peak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)


def test_gateway_rss_stays_flat_for_a_large_object(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    c = make_cluster()
    s3 = c.s3(read_timeout=120)
    s3.create_bucket(Bucket="mem")
    path = tmp_path / "big"
    digest = hashlib.md5()
    with open(path, "wb") as f:
        block = bytes(range(256)) * 4096  # 1 MiB
        for i in range(SIZE // MiB):
            piece = block[i % 256 :] + block[: i % 256]
            f.write(piece)
            digest.update(piece)
    gateway = psutil.Process(c.gateways[0].proc.pid)  # type: ignore[union-attr]
    baseline = gateway.memory_info().rss
    sampler = _Peak(gateway.pid)
    sampler.start()
    try:
        with open(path, "rb") as f:
            s3.put_object(Bucket="mem", Key="big", Body=f)
        down = hashlib.md5()
        body = s3.get_object(Bucket="mem", Key="big")["Body"]
        for piece in iter(lambda: body.read(MiB), b""):
            down.update(piece)
    finally:
        sampler.done.set()
        sampler.join(5)
    assert down.hexdigest() == digest.hexdigest()
    growth = sampler.peak - baseline
    print(
        f"gateway RSS: baseline {baseline / MiB:.0f} MiB, peak {sampler.peak / MiB:.0f} MiB for {SIZE // MiB} MiB"
    )
    assert growth < 80 * MiB, f"gateway RSS grew {growth / MiB:.0f} MiB for a {SIZE // MiB} MiB object"
