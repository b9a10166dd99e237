"""The `pails` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pails.config import load_settings

app = typer.Typer(help="Pails: an S3-compatible object store.", no_args_is_help=True, add_completion=False)


@app.command()
def server(
    data: Annotated[Path | None, typer.Option("--data", help="Data directory (default ./data).")] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="HOST:PORT to listen on (default 127.0.0.1:9000).")
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option("--domain", help="Domain of virtual-hosted-style buckets (default localhost)."),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region (default us-east-1).")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="debug, info, warning, error.")] = None,
) -> None:
    """Run the single-node server: SQLite metadata and chunks on local disk."""
    from pails.server import run

    settings = load_settings().with_overrides(
        data_dir=data, address=address, domain=domain, region=region, log_level=log_level
    )
    run(settings)


@app.command()
def version() -> None:
    """Print the version."""
    from pails import __version__

    typer.echo(__version__)


def main() -> None:
    app()
