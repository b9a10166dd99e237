"""The `pails` command."""

from __future__ import annotations

from pathlib import Path

import typer

from pails.config import load_settings

app = typer.Typer(help="Pails: an S3-compatible object store.", no_args_is_help=True, add_completion=False)


@app.command()
def server(
    data: Path = typer.Option(None, "--data", help="Data directory (default ./data; env PAILS_DATA_DIR)."),
    address: str = typer.Option(None, "--address", help="HOST:PORT to listen on (default 127.0.0.1:9000)."),
    domain: str = typer.Option(None, "--domain", help="Domain for virtual-hosted-style buckets (default localhost)."),
    region: str = typer.Option(None, "--region", help="Region reported and required in signatures."),
    log_level: str = typer.Option(None, "--log-level", help="debug, info, warning or error."),
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
