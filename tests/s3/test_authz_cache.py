"""The shared authorization cache: two `pails server` processes on one PostgreSQL metadata database
with --cache redis://...; a PutBucketPolicy through one is enforced by the other within a second
(pub/sub invalidation), and a Redis that goes away never fails requests (database fallback,
counted in /metrics)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from conftest import EXTERNAL, ServerInfo, _new_local_server, free_port
from pgtestdb import create_database_sync, drop_database_sync, in_ci, require_postgres

# serial: a change through one server must be seen by the other within a second (decision 0020)
pytestmark = [pytest.mark.needs_process, pytest.mark.serial]

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def _redis_reachable() -> None:
    try:
        redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if in_ci():
            pytest.fail(f"Redis at {SHARED_REDIS} is unreachable ({exc}); CI is set")
        pytest.skip(f"Redis at {SHARED_REDIS} is unreachable ({exc})")


@pytest.fixture
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], tuple[ServerInfo, ServerInfo]]]:
    """Start two servers sharing a fresh PostgreSQL database and the given cache URL."""
    if EXTERNAL:
        pytest.skip("needs local server processes")
    require_postgres()
    name, dsn = create_database_sync()
    started: list[ServerInfo] = []

    def start(cache_url: str) -> tuple[ServerInfo, ServerInfo]:
        secret = "pails-test-secret-" + uuid.uuid4().hex
        for _ in range(2):
            srv = _new_local_server(
                tmp_path_factory.mktemp("pails-cache"),
                secret_key=secret,
                args=["--metadata", dsn, "--cache", cache_url],
            )
            started.append(srv)
            srv.start()
        return started[-2], started[-1]

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()
        drop_database_sync(name)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_for_status(url: str, expected: int, within: float) -> float:
    """Seconds until an unsigned GET of url answers `expected` (fails after `within`)."""
    start = time.monotonic()
    while True:
        got = status_of(url)
        elapsed = time.monotonic() - start
        if got == expected:
            return elapsed
        if elapsed > within:
            pytest.fail(f"{url} still answers {got} after {elapsed:.2f}s (expected {expected})")
        time.sleep(0.02)


def public_list_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                }
            ],
        }
    )


def fallbacks(server: ServerInfo) -> float:
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(r"^pails_cache_fallbacks_total (\S+)$", text, re.MULTILINE)
    assert match is not None, "pails_cache_fallbacks_total missing from /metrics"
    return float(match.group(1))


@pytest.fixture
def prefix() -> Iterator[str]:
    _redis_reachable()
    name = "pails-test-" + uuid.uuid4().hex[:12]
    yield name
    client = redis.Redis.from_url(SHARED_REDIS)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)


def test_policy_change_through_one_server_is_enforced_by_the_other(
    pair: Callable[[str], tuple[ServerInfo, ServerInfo]], prefix: str
) -> None:
    a, b = pair(f"{SHARED_REDIS}?prefix={prefix}")
    s3a = a.client()
    bucket = "cache-" + uuid.uuid4().hex[:10]
    s3a.create_bucket(Bucket=bucket)
    s3a.put_object(Bucket=bucket, Key="k", Body=b"v")
    url_b = f"{b.endpoint}/{bucket}"
    for _ in range(3):  # B has the bucket cached (private)
        assert status_of(url_b) == 403
    assert redis.Redis.from_url(SHARED_REDIS).exists(f"{prefix}:bucket:{bucket}")
    s3a.put_bucket_policy(Bucket=bucket, Policy=public_list_policy(bucket))
    assert wait_for_status(url_b, 200, within=1.0) <= 1.0
    s3a.delete_bucket_policy(Bucket=bucket)
    assert wait_for_status(url_b, 403, within=1.0) <= 1.0
    # and the other way round, with an ACL
    b.client().put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert wait_for_status(f"{a.endpoint}/{bucket}", 200, within=1.0) <= 1.0
    assert fallbacks(a) == 0 and fallbacks(b) == 0


def _start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                return proc
        time.sleep(0.05)
    proc.kill()
    pytest.fail("redis-server did not start")


def test_redis_going_away_falls_back_to_the_database(
    pair: Callable[[str], tuple[ServerInfo, ServerInfo]], tmp_path: Path
) -> None:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        if in_ci():
            pytest.fail("redis-server is not installed; CI is set")
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = _start_redis(port, tmp_path)
    try:
        a, b = pair(f"redis://127.0.0.1:{port}/0?prefix=down")
        s3a, s3b = a.client(), b.client()
        bucket = "down-" + uuid.uuid4().hex[:10]
        s3a.create_bucket(Bucket=bucket)
        url_b = f"{b.endpoint}/{bucket}"
        assert status_of(url_b) == 403
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # requests keep working, signed and anonymous, through either server
        assert s3b.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
        s3a.put_bucket_policy(Bucket=bucket, Policy=public_list_policy(bucket))
        assert s3a.get_bucket_policy(Bucket=bucket)["Policy"]
        # without pub/sub, B's entries live only the short local TTL
        wait_for_status(url_b, 200, within=5.0)
        s3b.put_object(Bucket=bucket, Key="k", Body=b"v")
        assert s3b.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
        assert fallbacks(a) > 0 and fallbacks(b) > 0
        for srv in (a, b):
            assert srv.proc is not None and srv.proc.poll() is None
            assert "Redis cache unavailable" in srv.stderr_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_workers_of_one_server_invalidate_each_other(start_server: Callable[..., ServerInfo]) -> None:
    """--workers 2: a policy change through one worker reaches the other at once (no Redis)."""
    srv = start_server(args=["--workers", "2"])
    s3 = srv.client()
    bucket = "workers-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=bucket)
    url = f"{srv.endpoint}/{bucket}"
    for _ in range(20):  # new connections: both workers cache the bucket as private
        assert status_of(url) == 403
    s3.put_bucket_policy(Bucket=bucket, Policy=public_list_policy(bucket))
    assert [status_of(url) for _ in range(20)] == [200] * 20
    s3.delete_bucket_policy(Bucket=bucket)
    assert [status_of(url) for _ in range(20)] == [403] * 20
