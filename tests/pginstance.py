"""A private PostgreSQL server for tests that must stop, crash and restart it.

The shared PostgreSQL on 127.0.0.1:5432 is a system service that tests must not restart, so a test
that needs an outage starts its own: `initdb` into a fresh temporary directory, `pg_ctl start` on a
free 127.0.0.1 port (its unix socket in that directory, fsync on), and afterwards always stops that
server and removes the directory, also when the test fails.

PostgreSQL refuses to run as root: as root the binaries run as an unprivileged user (PAILS_TEST_PG_USER,
default `postgres`) through `runuser`, and the directory belongs to that user. The binaries are looked
up in PAILS_TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH. When they or the user
are missing, `require_instance()` skips with the reason, or fails when CI is set.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgtestdb import in_ci
from ports import free_port

_START_TIMEOUT = 30  # seconds, for pg_ctl -w


def find_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    names = ("initdb", "pg_ctl", "postgres")
    configured = os.environ.get("PAILS_TEST_PG_BIN")
    candidates: list[Path] = [Path(configured)] if configured else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).parent)
    for directory in candidates:
        if all((directory / name).is_file() for name in names):
            return directory
    return None


def _missing_reason() -> str | None:
    if find_bin_dir() is None:
        return "the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed; set PAILS_TEST_PG_BIN"
    if os.geteuid() == 0:
        user = os.environ.get("PAILS_TEST_PG_USER", "postgres")
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no unprivileged user {user!r} to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing (needed to run PostgreSQL unprivileged)"
    return None


def require_instance() -> None:
    """Skip (or, with CI set, fail) the calling test when a private PostgreSQL cannot be started."""
    reason = _missing_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"cannot start a private PostgreSQL: {reason}; CI is set, so this is a failure")
    pytest.skip(f"cannot start a private PostgreSQL: {reason}")


class PgInstance:
    """One private PostgreSQL server: start(), stop(mode), restart(mode), cleanup()."""

    def __init__(self, bin_dir: Path, base: Path, port: int, user: str | None) -> None:
        self.bin_dir = bin_dir
        self.base = base
        self.data_dir = base / "data"
        self.socket_dir = base / "sock"
        self.log_path = base / "postgres.log"
        self.port = port
        self.user = user  # the OS user to run as (when we are root), else None
        self.host = "127.0.0.1"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=self.base
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed with {done.returncode}:\n{done.stdout}\n{done.stderr}\n"
                f"{self.log_text()}"
            )
        return done

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def init(self) -> None:
        self.socket_dir.mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.base, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        # --no-sync only skips initdb's own flush of the fresh cluster; the server runs with fsync on.
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} -c fsync=on "
            "-c shared_buffers=16MB -c max_connections=60 -c max_wal_size=64MB"
        )
        self._run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
            "-t", str(_START_TIMEOUT), "-o", options,
            timeout=_START_TIMEOUT + 10,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" (clean shutdown, sessions cut) or "immediate" (a crash: no
        checkpoint, recovery from the WAL at the next start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", timeout=40)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def cleanup(self) -> None:
        """Stop the server if it runs (however it was left), then remove its directory."""
        if self.postmaster_pid() is not None:
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pid = self.postmaster_pid()  # the postmaster this instance started; its children follow it
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def pg_instance() -> Iterator[PgInstance]:
    """A started private PostgreSQL, stopped and removed afterwards (skips when it cannot exist)."""
    require_instance()
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    user = os.environ.get("PAILS_TEST_PG_USER", "postgres") if os.geteuid() == 0 else None
    # Not under pytest's tmp_path: as root that is private to root, and postgres must reach its files.
    base = Path(tempfile.mkdtemp(prefix="pails-pg-"))
    instance = PgInstance(bin_dir, base, free_port(), user)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.cleanup()
