"""Two `pails gateway` processes sharing one PostgreSQL database and the same storage nodes
(issue 6): read-after-write and list-after-write across gateways, and conditional writes decided
by the database (one CreateBucket winner, one If-None-Match: * winner)."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ClientError
from clusterutil import Cluster
from pgtestdb import create_database_sync, drop_database_sync, require_postgres

MakeCluster = Callable[..., Cluster]


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_postgres()
    name, dsn = create_database_sync()
    try:
        yield dsn
    finally:
        drop_database_sync(name)


@pytest.fixture
def two(make_cluster: MakeCluster, pg_url: str) -> Cluster:
    return make_cluster(metadata_url=pg_url, gateways=2)


def test_read_and_list_after_write_across_gateways(two: Cluster) -> None:
    a, b = two.s3(0), two.s3(1)
    a.create_bucket(Bucket="shared")
    b.head_bucket(Bucket="shared")
    errors: list[str] = []
    stop = threading.Event()

    def writer_reader(prefix: str, put: object, get: object) -> None:
        for i in range(40):
            if stop.is_set():
                return
            key = f"{prefix}/{i:03d}"
            body = os.urandom(1000 + i * 997)
            put.put_object(Bucket="shared", Key=key, Body=body)  # type: ignore[attr-defined]
            got = get.get_object(Bucket="shared", Key=key)["Body"].read()  # type: ignore[attr-defined]
            if got != body:
                errors.append(f"read-after-write {key}")
            listed = get.list_objects_v2(Bucket="shared", Prefix=key)  # type: ignore[attr-defined]
            if [o["Key"] for o in listed.get("Contents", [])] != [key]:
                errors.append(f"list-after-write {key}")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(writer_reader, "via-a", a, two.s3(1)),
            pool.submit(writer_reader, "via-b", b, two.s3(0)),
        ]
        for f in futures:
            f.result(120)
    assert errors == []
    keys = [o["Key"] for o in a.list_objects_v2(Bucket="shared", MaxKeys=1000)["Contents"]]
    assert len(keys) == 80


def test_concurrent_create_bucket_across_gateways_has_one_winner(two: Cluster) -> None:
    clients = [two.s3(k % 2) for k in range(50)]
    barrier = threading.Barrier(50)

    def create(k: int) -> str:
        barrier.wait(30)
        try:
            clients[k].create_bucket(Bucket="contended")
            return "created"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(create, range(50)))
    assert outcomes.count("created") == 1, outcomes
    # The same owner asked again: S3 answers BucketAlreadyOwnedByYou (us-east-1 legacy: 200 too).
    assert set(outcomes) <= {"created", "BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


def test_concurrent_if_none_match_puts_across_gateways_have_one_winner(two: Cluster) -> None:
    two.s3(0).create_bucket(Bucket="cond")
    n = 20
    clients = [two.s3(k % 2) for k in range(n)]
    bodies = [os.urandom(5000) for _ in range(n)]
    barrier = threading.Barrier(n)

    def put(k: int) -> str:
        barrier.wait(30)
        try:
            clients[k].put_object(Bucket="cond", Key="once", Body=bodies[k], IfNoneMatch="*")
            return "ok"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        outcomes = list(pool.map(put, range(n)))
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) <= {"ok", "PreconditionFailed", "ConditionalRequestConflict"}
    winner = bodies[outcomes.index("ok")]
    for k in (0, 1):
        assert two.s3(k).get_object(Bucket="cond", Key="once")["Body"].read() == winner


def test_one_gateway_runs_the_background_jobs_and_another_takes_over(two: Cluster) -> None:
    import time

    def holders() -> list[bool]:
        return [bool(two.status(k)["background_lease"]["held"]) for k in (0, 1)]

    deadline = time.monotonic() + 10
    while sum(holders()) != 1:
        assert time.monotonic() < deadline, holders()
        time.sleep(0.2)
    held = holders().index(True)
    two.gateways[held].kill9()
    other = 1 - held
    deadline = time.monotonic() + 15  # lease_seconds is 3 in these tests
    while not two.status(other)["background_lease"]["held"]:
        assert time.monotonic() < deadline, "the surviving gateway never took the lease"
        time.sleep(0.2)


def test_policy_change_through_one_gateway_is_enforced_by_the_other(
    make_cluster: MakeCluster, pg_url: str
) -> None:
    """Issue 4's shared cache between two `pails gateway` processes: bucket policies cached in
    Redis and invalidated by pub/sub, so the other gateway enforces a change within a second."""
    import json
    import time
    import urllib.error
    import urllib.request
    import uuid

    import redis

    shared = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(shared, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {shared} is required in CI: {exc}")
        pytest.skip(f"Redis at {shared} is not reachable: {exc}")
    prefix = "pails-test-" + uuid.uuid4().hex[:12]
    cluster = make_cluster(
        metadata_url=pg_url, gateways=2, settings={"PAILS_CACHE_URL": f"{shared}?prefix={prefix}"}
    )

    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    def seconds_until(url: str, expected: int, within: float = 1.0) -> float:
        start = time.monotonic()
        while (got := status(url)) != expected:
            if time.monotonic() - start > within:
                pytest.fail(f"{url} still answers {got} after {within}s (expected {expected})")
            time.sleep(0.02)
        return time.monotonic() - start

    try:
        a = cluster.s3(0)
        bucket = "gwcache-" + uuid.uuid4().hex[:8]
        a.create_bucket(Bucket=bucket)
        a.put_object(Bucket=bucket, Key="k", Body=b"v")
        on_b = f"{cluster.endpoint(1)}/{bucket}/k"
        for _ in range(3):  # gateway B caches the bucket as private
            assert status(on_b) == 403
        public_read = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
        a.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read))
        assert seconds_until(on_b, 200) <= 1.0
        with urllib.request.urlopen(on_b, timeout=5) as resp:
            assert resp.read() == b"v"  # the bytes come from the shared nodes
        a.delete_bucket_policy(Bucket=bucket)
        assert seconds_until(on_b, 403) <= 1.0
    finally:
        client = redis.Redis.from_url(shared)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
