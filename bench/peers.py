"""Start and stop the servers under test: Pails (one server, or a dev cluster), moto (Python) and
rclone serve s3 (Go).

Each server is a subprocess we own, on a free 127.0.0.1 port, with its data in a
temporary directory; it is stopped by PID (and its descendants by PID) at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "benchaccesskey"
SECRET_KEY = "benchsecretkey0123456789"
BIN = Path(sys.executable).parent
SERVERS = ("pails", "cluster", "moto", "rclone", "sink")


@dataclass
class Server:
    name: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join((self.workdir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def _command(name: str, port: int, data: Path, extra: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """(argv, readiness path) for a server; ``extra`` arguments go to Pails only."""
    addr = f"127.0.0.1:{port}"
    if name == "pails":
        return [_tool("pails"), "server", "--data", str(data), "--address", addr, *extra], "/health/ready"
    if name == "cluster":  # a gateway and three storage nodes, R=3, W=2 (pails dev-cluster)
        argv = [_tool("pails"), "dev-cluster", "--nodes", "3", "--replicas", "3", "--data", str(data)]
        return [*argv, "--address", addr], "/health/ready"
    if name == "moto":
        return [_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], "/"
    if name == "rclone":
        argv = [_tool("rclone"), "serve", "s3", "--addr", addr, "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}"]
        return [*argv, "--config", "/dev/null", str(data)], "/"
    if name == "sink":  # the harness's own ceiling (see bench/sink.py)
        return [sys.executable, "-m", "bench.sink", "--port", str(port)], "/"
    raise ValueError(f"unknown server {name!r} (choose from {', '.join(SERVERS)})")


def _ready(url: str, need_200: bool) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return not need_200 and exc.code < 500
    except (OSError, ValueError):
        return False


def start(name: str, timeout: float = 30.0, pails_args: tuple[str, ...] = ()) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    data = workdir / "data"
    data.mkdir()
    port = free_port()
    argv, ready_path = _command(name, port, data, pails_args)
    env = dict(os.environ, PAILS_ROOT_ACCESS_KEY=ACCESS_KEY, PAILS_ROOT_SECRET_KEY=SECRET_KEY)
    root = str(Path(__file__).resolve().parent.parent)  # so `python -m bench.sink` imports
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=workdir
        )
    server = Server(name, f"http://127.0.0.1:{port}", proc, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = server.log_tail()
            stop(server)
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
        if _ready(server.endpoint + ready_path, need_200=name in ("pails", "cluster")):
            return server
        time.sleep(0.2)
    tail = server.log_tail()
    stop(server)
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s:\n{tail}")


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError):
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        todo += kids
    return found


def stop(server: Server, keep_data: bool = False) -> None:
    """SIGTERM the server by PID, SIGKILL after 10 s, then any leftover descendants by PID."""
    kids = _descendants(server.pid)
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=10)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if not keep_data:
        shutil.rmtree(server.workdir, ignore_errors=True)
