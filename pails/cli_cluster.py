"""The cluster commands of `pails`: gateway, dev-cluster, admin node ..., admin cluster status."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from pails.config import load_settings

node_admin = typer.Typer(help="Cluster membership (through a gateway's admin API).", no_args_is_help=True)
cluster_admin = typer.Typer(help="Cluster state (through a gateway's admin API).", no_args_is_help=True)

EndpointOption = Annotated[str, typer.Option("--endpoint", help="A gateway's URL.", envvar="PAILS_ENDPOINT")]
DEFAULT_ENDPOINT = "http://127.0.0.1:9000"


def gateway(
    metadata: Annotated[
        str,
        typer.Option(
            "--metadata", help="Metadata store: sqlite:///abs/path or postgresql://user@host:port/db."
        ),
    ],
    address: Annotated[
        str | None, typer.Option("--address", help="HOST:PORT (default 127.0.0.1:9000).")
    ] = None,
    replicas: Annotated[
        int | None, typer.Option("--replicas", help="Replicas per chunk, R (default 3).", min=1)
    ] = None,
    write_quorum: Annotated[
        int | None,
        typer.Option(
            "--write-quorum", help="Acknowledgements before a write succeeds, W (default 2).", min=1
        ),
    ] = None,
    domain: Annotated[
        str | None, typer.Option("--domain", help="Domain of virtual-hosted-style buckets.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region (default us-east-1).")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="debug, info, warning, error.")] = None,
) -> None:
    """Run a stateless S3 gateway over storage nodes (PAILS_CLUSTER_SECRET, PAILS_ROOT_ACCESS_KEY,
    PAILS_ROOT_SECRET_KEY must be set)."""
    from pails.cli import _check_metadata_url
    from pails.cluster_settings import load_cluster_settings
    from pails.gateway import GatewayConfigError, check_gateway_settings, run_gateway

    _check_metadata_url(metadata)
    settings = load_settings().with_overrides(
        address=address, domain=domain, region=region, log_level=log_level, metadata_url=metadata
    )
    cluster = load_cluster_settings().with_overrides(replicas=replicas, write_quorum=write_quorum)
    try:
        check_gateway_settings(settings, cluster)
    except GatewayConfigError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    run_gateway(settings, cluster)


def dev_cluster(
    nodes: Annotated[int, typer.Option("--nodes", help="Storage nodes to start.", min=1, max=32)] = 3,
    replicas: Annotated[int, typer.Option("--replicas", help="Replicas per chunk, R.", min=1)] = 3,
    write_quorum: Annotated[
        int | None, typer.Option("--write-quorum", help="W (default: a majority of R).", min=1)
    ] = None,
    data: Annotated[Path, typer.Option("--data", help="Directory for the nodes and the metadata.")] = Path(
        "./dev-cluster"
    ),
    address: Annotated[str, typer.Option("--address", help="The gateway's HOST:PORT.")] = "127.0.0.1:9000",
    node_capacity: Annotated[
        int | None, typer.Option("--node-capacity", help="Cap each node's disk use at this many bytes.")
    ] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="The gateway's virtual-host domain.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="The gateway's region.")] = None,
) -> None:
    """Start a gateway and N storage nodes on this machine (Ctrl-C stops them all)."""
    from pails.devcluster import run_dev_cluster

    w = write_quorum if write_quorum is not None else replicas // 2 + 1
    if w > replicas:
        raise typer.BadParameter("the write quorum cannot exceed the replicas", param_hint="--write-quorum")
    gateway_args: list[str] = []
    if domain is not None:
        gateway_args += ["--domain", domain]
    if region is not None:
        gateway_args += ["--region", region]
    raise typer.Exit(
        run_dev_cluster(
            nodes, replicas, w, data, address, node_capacity=node_capacity, gateway_args=gateway_args
        )
    )


def _client(endpoint: str) -> Any:
    from pails.admin_client import AdminClient

    access = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        typer.echo("Error: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an admin's keys).", err=True)
        raise typer.Exit(2)
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return AdminClient(endpoint, access, secret, region)


def _call(endpoint: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from pails.admin_client import AdminError

    try:
        return _client(endpoint).call(method, path, body)
    except AdminError as exc:
        typer.echo(f"Error: {exc.code}: {exc.message} (HTTP {exc.status})", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"Error: cannot reach {endpoint}: {exc}", err=True)
        raise typer.Exit(1) from None


@node_admin.command("add")
def node_add(
    address: Annotated[str, typer.Argument(help="The node's HOST:PORT.")],
    zone: Annotated[
        str, typer.Option("--zone", help="Failure domain (replicas go to distinct zones).")
    ] = "default",
    weight: Annotated[float, typer.Option("--weight", help="Relative capacity.", min=0.001)] = 1.0,
    endpoint: EndpointOption = DEFAULT_ENDPOINT,
) -> None:
    """Add a storage node (writes the next ring version; the rebalancer moves chunks to it)."""
    answer = _call(endpoint, "POST", "cluster/nodes", {"address": address, "zone": zone, "weight": weight})
    typer.echo(f"added {answer['node']['node_id']} ({address}); ring version {answer['ring_version']}")


@node_admin.command("drain")
def node_drain(
    node: Annotated[str, typer.Argument(help="Node id or address.")],
    endpoint: EndpointOption = DEFAULT_ENDPOINT,
) -> None:
    """Drain a node: it takes no new chunks and the rebalancer moves its chunks away."""
    answer = _call(endpoint, "POST", f"cluster/nodes/{node}/drain")
    typer.echo(f"draining {answer['node']['node_id']}; ring version {answer['ring_version']}")


@node_admin.command("remove")
def node_remove(
    node: Annotated[str, typer.Argument(help="Node id or address.")],
    endpoint: EndpointOption = DEFAULT_ENDPOINT,
) -> None:
    """Remove a node from the ring (drain it first, or its replicas are re-created from others)."""
    answer = _call(endpoint, "DELETE", f"cluster/nodes/{node}")
    typer.echo(f"removed {answer['node']['node_id']}; ring version {answer['ring_version']}")


@node_admin.command("list")
def node_list(
    endpoint: EndpointOption = DEFAULT_ENDPOINT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the member nodes."""
    answer = _call(endpoint, "GET", "cluster/nodes")
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("node id", "address", "zone", "weight", "state")
    for n in answer["nodes"]:
        table.add_row(n["node_id"], n["address"], n["zone"], f"{n['weight']:g}", n["state"])
    Console().print(table)


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


@cluster_admin.command("status")
def cluster_status(
    endpoint: EndpointOption = DEFAULT_ENDPOINT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each node: up/down, capacity, used, chunk count, repair backlog."""
    answer = _call(endpoint, "GET", "cluster/status")
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"ring version {answer['ring_version']}, R={answer['replicas']}, W={answer['write_quorum']}, "
        f"repair backlog {answer['repair_backlog']}"
    )
    table = Table(
        "node id", "address", "zone", "state", "health", "capacity", "used", "chunks", "corrupt", "backlog"
    )
    for n in answer["nodes"]:
        table.add_row(
            n["node_id"],
            n["address"],
            n["zone"],
            n["state"],
            "[green]up[/]" if n["up"] else "[red]down[/]",
            _size(n["capacity"]),
            _size(n["used"]),
            "-" if n["chunks"] is None else str(n["chunks"]),
            "-" if n["corrupt"] is None else str(n["corrupt"]),
            str(n["repair_backlog"]),
        )
    console.print(table)


def register(app: typer.Typer, admin: typer.Typer) -> None:
    app.command("gateway")(gateway)
    app.command("dev-cluster")(dev_cluster)
    admin.add_typer(node_admin, name="node")
    admin.add_typer(cluster_admin, name="cluster")
