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
    metadata: Annotated[
        str | None,
        typer.Option(
            "--metadata",
            help="Metadata store: sqlite:///abs/path (default DATA_DIR/meta.db) or postgresql://user@host:port/db.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes sharing the port (SO_REUSEPORT); 0 = one per CPU (default 1).",
            min=0,
            max=256,
        ),
    ] = 1,
) -> None:
    """Run the server: metadata in SQLite (default) or PostgreSQL, chunks on local disk."""
    from pails.server import run

    if metadata is not None:
        _check_metadata_url(metadata)
    settings = load_settings().with_overrides(
        data_dir=data,
        address=address,
        domain=domain,
        region=region,
        log_level=log_level,
        metadata_url=metadata,
    )
    run(settings, workers)


def _check_metadata_url(url: str) -> None:
    from pails.meta.factory import MetadataUrlError, create_metadata_store

    try:
        create_metadata_store(url)  # parses only; nothing is opened
    except MetadataUrlError as exc:
        raise typer.BadParameter(str(exc), param_hint="--metadata") from None


admin = typer.Typer(help="Administration.", no_args_is_help=True)
app.add_typer(admin, name="admin")


@admin.command("migrate")
def migrate(
    metadata: Annotated[
        str | None,
        typer.Option(
            "--metadata", help="Metadata store URL (default PAILS_METADATA_URL, else DATA_DIR/meta.db)."
        ),
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Data directory (default ./data).")] = None,
) -> None:
    """Apply pending metadata schema migrations (opening the store does the same), then exit."""
    import asyncio

    from pails.meta.factory import create_metadata_store, default_metadata_url, describe

    settings = load_settings().with_overrides(data_dir=data, metadata_url=metadata)
    url = settings.metadata_url or default_metadata_url(settings.data_dir)
    _check_metadata_url(url)

    async def run_migrations() -> None:
        store = create_metadata_store(url)
        await store.open()
        await store.close()

    asyncio.run(run_migrations())
    typer.echo(f"metadata schema up to date: {describe(url)}")


@app.command()
def version() -> None:
    """Print the version."""
    from pails import __version__

    typer.echo(__version__)


def _register_cluster_commands() -> None:
    from pails.cli_cluster import register

    register(app, admin)


_register_cluster_commands()


def main() -> None:
    app()
