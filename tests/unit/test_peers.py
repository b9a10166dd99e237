"""The worker group's peer sockets (pails server --workers N): a worker still starting is waited
for, and the group is reported ready only once every worker listens."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pails.data.local import LocalChunkStore
from pails.meta.sqlite import SqliteMetadataStore
from pails.obs.metrics import Metrics
from pails.service.gc import GarbageCollector
from pails.service.peers import Peers


async def test_gather_waits_for_a_worker_that_is_still_starting(tmp_path: Path) -> None:
    meta = SqliteMetadataStore(tmp_path / "meta.db")
    chunks = LocalChunkStore(tmp_path / "chunks", worker=0)
    await meta.open()
    await chunks.open()
    gc = GarbageCollector(
        meta, chunks, Metrics(None), grace_seconds=3600, garbage_ratio=0.5, upload_retention_seconds=3600
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first, second = Peers(run_dir, 0, 2), Peers(run_dir, 1, 2)
    try:
        await first.start(gc)
        assert not first.all_listening()

        async def start_late() -> None:
            await asyncio.sleep(0.5)
            await second.start(gc)

        late = asyncio.create_task(start_late())
        answers = await first.gather("GET", "/stats")  # asked before the second worker listens
        await late
        assert len(answers) == 1 and answers[0] == gc.store_stats()
        assert first.all_listening() and second.all_listening()
    finally:
        await first.stop()
        await second.stop()
        await chunks.close()
        await meta.close()
