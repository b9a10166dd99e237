"""`pails dev-cluster`: a gateway and N storage nodes on this machine, one command.

Everything lives under DATA: node-K/ (each node's chunks), meta.db (the gateway's metadata),
dev-cluster.json (the node addresses, the cluster secret and the root credentials, so that a
restart finds the same cluster). The nodes are registered in the metadata before the gateway
starts (zone zK for node K). SIGINT/SIGTERM stop every child; children also die with this
process (PR_SET_PDEATHSIG), and if one child exits the others are stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pails.iam.credentials import generate_key_pair
from pails.meta.cluster import create_cluster_store
from pails.meta.factory import create_metadata_store

STATE_FILE = "dev-cluster.json"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_state(data: Path, nodes: int, host: str) -> dict[str, Any]:
    path = data / STATE_FILE
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if not state.get("cluster_secret"):
        state["cluster_secret"] = os.environ.get("PAILS_CLUSTER_SECRET") or secrets.token_hex(32)
    if not state.get("access_key"):
        access, secret = os.environ.get("PAILS_ROOT_ACCESS_KEY"), os.environ.get("PAILS_ROOT_SECRET_KEY")
        if not (access and secret):
            access, secret = generate_key_pair()
        state["access_key"], state["secret_key"] = access, secret
    if not state.get("server_key"):
        state["server_key"] = os.environ.get("PAILS_SERVER_KEY") or secrets.token_urlsafe(32)
    addresses: list[str] = list(state.get("nodes", []))
    while len(addresses) < nodes:
        addresses.append(f"{host}:{_free_port(host)}")
    state["nodes"] = addresses
    data.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2)
    return state


async def register_nodes(metadata_url: str, addresses: list[str]) -> None:
    """Add every address that is not a member yet (zone zK for the K-th)."""
    meta = create_metadata_store(metadata_url)
    await meta.open()  # applies the migrations
    await meta.close()
    store = create_cluster_store(metadata_url)
    await store.open()
    try:
        known = {n.address for n in await store.list_nodes()}
        for k, address in enumerate(addresses, start=1):
            if address not in known:
                await store.add_node(address, f"z{k}", 1.0)
    finally:
        await store.close()


def _wait_for(address: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def run_dev_cluster(
    nodes: int,
    replicas: int,
    write_quorum: int,
    data: Path,
    address: str,
    *,
    node_capacity: int | None = None,
    gateway_args: list[str] | None = None,
) -> int:
    data = data.resolve()
    host = address.rsplit(":", 1)[0] or "127.0.0.1"
    state = _load_state(data, nodes, host)
    addresses: list[str] = state["nodes"][:nodes]
    metadata_url = f"sqlite://{data / 'meta.db'}"
    env = dict(os.environ)
    env.update(
        PAILS_CLUSTER_SECRET=state["cluster_secret"],
        PAILS_ROOT_ACCESS_KEY=state["access_key"],
        PAILS_ROOT_SECRET_KEY=state["secret_key"],
        PAILS_SERVER_KEY=state["server_key"],
    )
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        for k, node_address in enumerate(addresses, start=1):
            cmd = [
                sys.executable,
                "-m",
                "pails",
                "node",
                "--data",
                str(data / f"node-{k}"),
                "--address",
                node_address,
            ]
            if node_capacity is not None:
                cmd += ["--capacity", str(node_capacity)]
            children.append(subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent))
        for child, node_address in zip(children, addresses, strict=True):
            if not _wait_for(node_address, child):
                print(f"storage node {node_address} did not start", file=sys.stderr)
                return 1
        asyncio.run(register_nodes(metadata_url, addresses))
        gateway_cmd = [
            sys.executable, "-m", "pails", "gateway", "--metadata", metadata_url, "--address", address,
            "--replicas", str(replicas), "--write-quorum", str(write_quorum), *(gateway_args or []),
        ]  # fmt: skip
        gateway = subprocess.Popen(gateway_cmd, env=env, preexec_fn=_die_with_parent)
        children.append(gateway)
        if not _wait_for(address, gateway):
            print("the gateway did not start", file=sys.stderr)
            return 1
        endpoint = f"http://{address}"
        print(
            f"Pails dev cluster: {nodes} nodes ({', '.join(addresses)}), R={replicas}, W={write_quorum}\n"
            f"  S3 endpoint: {endpoint}\n"
            f"  AWS_ACCESS_KEY_ID={state['access_key']}\n"
            f"  AWS_SECRET_ACCESS_KEY={state['secret_key']}\n"
            f"  status: AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... pails admin cluster status --endpoint {endpoint}\n"
            f"  data: {data}",
            flush=True,
        )
        while not stopping:
            if any(child.poll() is not None for child in children):
                print("a child process ended: stopping the dev cluster", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_all()
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
