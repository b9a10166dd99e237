"""`pails dev-cluster` and the `pails admin` cluster commands, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import psutil
import pytest
from botocore.config import Config
from clusterutil import ROOT, free_port


def _pails(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pails", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def dev_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", PAILS_PROBE_INTERVAL_SECONDS="0.3")
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "PAILS_ROOT_ACCESS_KEY",
        "PAILS_ROOT_SECRET_KEY",
    ):
        env.pop(var, None)
    log = tmp_path / "dev-cluster.log"
    cmd = [sys.executable, "-m", "pails", "dev-cluster", "--nodes", "3", "--replicas", "3"]
    cmd += ["--data", str(tmp_path / "dc"), "--address", f"127.0.0.1:{port}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while "AWS_SECRET_ACCESS_KEY=" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        access = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", text)
        secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", text)
        assert access and secret
        yield proc, f"http://127.0.0.1:{port}", access[1], secret[1], env
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []:
            child.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)


def test_dev_cluster_serves_s3_reports_status_and_stops_its_children(dev_cluster) -> None:  # type: ignore[no-untyped-def]
    proc, endpoint, access, secret, env = dev_cluster
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    s3.create_bucket(Bucket="dev")
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket="dev", Key="k", Body=body)
    assert s3.get_object(Bucket="dev", Key="k")["Body"].read() == body

    admin_env = dict(env, AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)
    status = _pails("admin", "cluster", "status", "--json", "--endpoint", endpoint, env=admin_env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["replicas"] == 3 and report["write_quorum"] == 2
    assert len(report["nodes"]) == 3 and all(n["up"] for n in report["nodes"])
    assert {n["zone"] for n in report["nodes"]} == {"z1", "z2", "z3"}
    assert all(n["chunks"] >= 1 and n["capacity"] > 0 for n in report["nodes"])
    table = _pails("admin", "node", "list", "--endpoint", endpoint, env=admin_env)
    assert table.returncode == 0 and "active" in table.stdout

    bad = _pails("admin", "node", "add", "not-an-address", "--endpoint", endpoint, env=admin_env)
    assert bad.returncode == 1 and "InvalidArgument" in bad.stderr
    unknown = _pails("admin", "node", "drain", "nope", "--endpoint", endpoint, env=admin_env)
    assert unknown.returncode == 1 and "No member node" in unknown.stderr
    wrong = dict(admin_env, AWS_SECRET_ACCESS_KEY="wrong")
    denied = _pails("admin", "cluster", "status", "--endpoint", endpoint, env=wrong)
    assert denied.returncode == 1 and "SignatureDoesNotMatch" in denied.stderr

    with urllib.request.urlopen(f"{endpoint}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'pails_cluster_replica_writes_total{outcome="ok"}' in metrics
    assert "pails_cluster_nodes_up 3.0" in metrics

    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) == 4  # three nodes and the gateway
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
