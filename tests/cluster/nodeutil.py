"""Start and stop real `pails node` processes for tests.

    with NodeProcess(tmp_path / "n1", secret=SECRET) as node:   # waits until it serves
        node.address           # "127.0.0.1:PORT"
        node.kill()            # SIGKILL, waits for exit
        node.start()           # again, same data dir and port
        node.stop()            # SIGTERM (clean), waits; SIGKILL after a timeout
        node.pause(); node.resume()   # SIGSTOP / SIGCONT

A node always ends (SIGCONT, then stop) on leaving the `with` block, even after a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from ports import free_port

DEFAULT_SECRET = "test-cluster-secret-0123456789"
READY_LINE = "Pails node serving on http://"


class NodeProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        secret: str = DEFAULT_SECRET,
        port: int | None = None,
        capacity: int | None = None,
        scrub_interval: float | None = None,
        scrub_rate: float | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.secret = secret
        self.port = port or free_port()
        self.capacity = capacity
        self.scrub_interval = scrub_interval
        self.scrub_rate = scrub_rate
        self.extra_args = list(extra_args or [])
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "pails", "node", "--data", str(self.data_dir), "--address", self.address]
        if self.capacity is not None:
            cmd += ["--capacity", str(self.capacity)]
        if self.scrub_interval is not None:
            cmd += ["--scrub-interval", str(self.scrub_interval)]
        if self.scrub_rate is not None:
            cmd += ["--scrub-rate", str(self.scrub_rate)]
        return cmd + self.extra_args

    def start(self, timeout: float = 20.0) -> NodeProcess:
        """Start the node and wait for its "Pails node serving on" line. Its output goes to
        `log_path` (a file, so that a chatty node never blocks on a full pipe)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("node already running")
        env = {**os.environ, "PAILS_CLUSTER_SECRET": self.secret, "PYTHONUNBUFFERED": "1", **self.env}
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("a")
        start_at = self.log_path.stat().st_size
        try:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")[start_at:]
            if READY_LINE in text:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"pails node did not start:\n{self.log_path.read_text(errors='replace')[start_at:]}"
        )

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (a crash) and wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> NodeProcess:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def flip_chunk_byte(data_dir: Path, chunk_id: bytes, offset: int = 0) -> None:
    """Flip (xor 0xFF) one data byte of a chunk's newest record in a node's volume files on disk,
    as bitrot would. The node may be running: it reads through the same page cache."""
    from pails.data import volume as vf

    vol_dir = Path(data_dir) / "chunks" / "volumes"
    best: tuple[int, Path, int] | None = None  # write time, volume, data offset
    for vol_id in vf.iter_volume_ids(vol_dir):
        for rec in vf.load_volume(vol_dir, vol_id, repair=False).records:
            found = rec.kind == vf.KIND_PUT and rec.chunk_id == chunk_id and offset < rec.length
            if found and (best is None or rec.wtime_us > best[0]):
                best = (rec.wtime_us, vf.volume_path(vol_dir, vol_id), rec.data_off)
    if best is None:
        raise LookupError(f"chunk {chunk_id.hex()} not found in {vol_dir}")
    _, path, data_off = best
    fd = os.open(path, os.O_RDWR)
    try:
        byte = os.pread(fd, 1, data_off + offset)
        os.pwrite(fd, bytes([byte[0] ^ 0xFF]), data_off + offset)
        os.fsync(fd)
    finally:
        os.close(fd)
