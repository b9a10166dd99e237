"""PostgreSQL restarted under a running `pails server`: clean 503s meanwhile, recovery, no lost write.

The server's metadata lives in a private PostgreSQL (tests/pginstance.py; the shared one on :5432 must
not be restarted). A few boto3 threads PUT, GET and LIST without SDK retries while PostgreSQL is
stopped (a clean fast shutdown, or an immediate-mode crash that recovers from the WAL), left down for
a moment, and started again. Every request either succeeds or fails with 503 ServiceUnavailable (an
S3 XML error with a request id, which SDKs retry); the server keeps running, /health/ready says 503
while the database is away, requests succeed again within seconds of PostgreSQL being back, and
every PUT that was answered 200 reads back with its bytes.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError
from conftest import ServerInfo, _new_local_server, unique_bucket_name
from pginstance import PgInstance, pg_instance

# serial: requests must recover within RECOVERY seconds of PostgreSQL being back (decision 0020)
pytestmark = [pytest.mark.slow, pytest.mark.needs_process, pytest.mark.serial]

THREADS = 4
OUTAGE = 2.5  # seconds PostgreSQL stays down
RECOVERY = 5.0  # seconds after PostgreSQL is back by which requests must succeed again
MAX_OPS = 3000  # per thread: the load is bounded in count as well as in time


@dataclass
class Outcome:
    at: float
    op: str
    ok: bool
    detail: str = ""


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # key -> sha256 of what a 200 PUT stored
    unclean: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgInstance]:
    with pg_instance() as instance:
        yield instance


@pytest.fixture(scope="module")
def pg_server(pg: PgInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    srv = _new_local_server(tmp_path_factory.mktemp("pails-pg-restart"), args=["--metadata", pg.dsn])
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def _classify(exc: BaseException) -> tuple[bool, str]:
    """(clean, description): clean is a 503 ServiceUnavailable S3 error with a request id."""
    if not isinstance(exc, ClientError):
        return False, f"{type(exc).__name__}: {exc}"
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    status, code, request_id = meta.get("HTTPStatusCode"), err.get("Code"), meta.get("RequestId")
    desc = f"{status} {code} request-id={request_id!r} message={err.get('Message')!r}"
    return (status == 503 and code == "ServiceUnavailable" and bool(request_id)), desc


def _step(client, bucket: str, n: int, op: str, key: str, body: bytes, mine: list[str], load: Load) -> None:
    if op == "put":
        client.put_object(Bucket=bucket, Key=key, Body=body)
        mine.append(key)
        with load.lock:
            load.acked[key] = hashlib.sha256(body).hexdigest()
    elif op == "get" and mine:
        got = client.get_object(Bucket=bucket, Key=mine[-1])["Body"].read()
        with load.lock:
            if hashlib.sha256(got).hexdigest() != load.acked[mine[-1]]:
                load.unclean.append(f"GET {mine[-1]} returned other bytes")
    elif op == "list":
        client.list_objects_v2(Bucket=bucket, Prefix=f"t{n}/", MaxKeys=50)


def _worker(srv: ServerInfo, bucket: str, n: int, load: Load, stop: threading.Event) -> None:
    client = srv.client()
    mine: list[str] = []
    for i in range(MAX_OPS):
        key = f"t{n}/k{i:05}"
        body = hashlib.sha256(key.encode()).digest() * (1 + i % 64)
        for op in ("put", "get", "list"):
            if stop.is_set():
                return
            try:
                _step(client, bucket, n, op, key, body, mine, load)
            except Exception as exc:
                clean, desc = _classify(exc)
                load.record(Outcome(time.monotonic(), op, False, desc))
                if not clean:
                    with load.lock:
                        load.unclean.append(f"{op} {key}: {desc}")
                continue
            load.record(Outcome(time.monotonic(), op, True))


def _ready_status(srv: ServerInfo) -> int:
    try:
        with urllib.request.urlopen(f"{srv.endpoint}/health/ready", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_mid_load(pg: PgInstance, pg_server: ServerInfo, mode: str) -> None:
    srv = pg_server
    s3 = srv.client()
    bucket = unique_bucket_name("pgr")
    s3.create_bucket(Bucket=bucket)
    load, stop = Load(), threading.Event()
    threads = [
        threading.Thread(target=_worker, args=(srv, bucket, n, load, stop), daemon=True)
        for n in range(THREADS)
    ]
    ready_while_down: list[int] = []
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        down_at = time.monotonic()
        pg.stop(mode)
        deadline = time.monotonic() + OUTAGE
        while time.monotonic() < deadline:
            ready_while_down.append(_ready_status(srv))
            time.sleep(0.2)
        up_at = time.monotonic()
        pg.start()
        back_at = time.monotonic()
        time.sleep(RECOVERY + 2.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a load thread hung"
    assert srv.proc is not None and srv.proc.poll() is None, f"the server died:\n{srv.stderr_text()}"

    # Every failure was a clean, retryable S3 error.
    assert not load.unclean, load.unclean[:10]
    during = [o for o in load.outcomes if down_at <= o.at <= back_at]
    assert during and any(not o.ok for o in during), "the outage went unnoticed: the test proves nothing"
    # Readiness followed the database.
    assert ready_while_down and all(code == 503 for code in ready_while_down[1:]), ready_while_down
    assert _ready_status(srv) == 200
    # Requests succeed again within RECOVERY seconds of PostgreSQL being back, and keep succeeding.
    late = [o for o in load.outcomes if o.at > back_at + RECOVERY]
    assert late, "no requests after the recovery window"
    assert all(o.ok for o in late), [o for o in late if not o.ok][:10]
    for op in ("put", "get", "list"):
        assert any(o.ok and o.op == op for o in late), op
    assert up_at - down_at >= OUTAGE

    # Nothing acknowledged is lost: every 200 PUT reads back with its bytes, and lists.
    assert len(load.acked) > 20
    for key, digest in load.acked.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(got).hexdigest() == digest, key
    listed: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed.update(o["Key"] for o in page.get("Contents", []))
    assert set(load.acked) <= listed
    if os.environ.get("PAILS_TEST_VERBOSE"):
        failed = sum(1 for o in load.outcomes if not o.ok)
        print(f"{mode}: {len(load.outcomes)} requests, {failed} failed cleanly, {len(load.acked)} acked")
