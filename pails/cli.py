"""The `pails` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pails.cli_admin import register as register_iam_commands
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
    pin_workers: Annotated[
        bool,
        typer.Option(
            "--pin-workers",
            help="Bind worker k to the k-th allowed CPU (with --workers > 1; for a dedicated host).",
        ),
    ] = False,
    cache: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="Share the authorization cache between servers: redis://host:port/db[?prefix=NAME] "
            "(default PAILS_CACHE_URL, else in-process only).",
        ),
    ] = None,
) -> None:
    """Run the server: metadata in SQLite (default) or PostgreSQL, chunks on local disk."""
    from pails.server import run

    if metadata is not None:
        _check_metadata_url(metadata)
    if cache is not None:
        from pails.iam.cache import split_cache_url

        try:
            split_cache_url(cache)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--cache") from None
    settings = load_settings().with_overrides(
        data_dir=data,
        address=address,
        domain=domain,
        region=region,
        log_level=log_level,
        metadata_url=metadata,
        cache_url=cache,
    )
    run(settings, workers, pin_workers=pin_workers)


def _check_metadata_url(url: str) -> None:
    from pails.meta.factory import MetadataUrlError, create_metadata_store

    try:
        create_metadata_store(url)  # parses only; nothing is opened
    except MetadataUrlError as exc:
        raise typer.BadParameter(str(exc), param_hint="--metadata") from None


@app.command()
def node(
    data: Annotated[Path, typer.Option("--data", help="Data directory of this node's chunks.")],
    address: Annotated[
        str, typer.Option("--address", help="HOST:PORT to listen on (port 0: any free port).")
    ] = "127.0.0.1:9100",
    capacity: Annotated[
        int | None,
        typer.Option(
            "--capacity", help="Bytes this node may use (default: the file system's free space).", min=1
        ),
    ] = None,
    scrub_rate: Annotated[
        float, typer.Option("--scrub-rate", help="Bytes per second the scrubber verifies at most.", min=1)
    ] = 32 * 1024 * 1024,
    scrub_interval: Annotated[
        float, typer.Option("--scrub-interval", help="Seconds between scrubber passes.", min=0)
    ] = 3600.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = "info",
) -> None:
    """Run a storage node serving the chunk protocol; PAILS_CLUSTER_SECRET must be set."""
    from pails.data.cluster_auth import AuthError, secret_from_env
    from pails.data.node import NodeSettings, run

    try:
        secret_from_env()
    except AuthError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise typer.BadParameter("expected HOST:PORT", param_hint="--address")
    settings = NodeSettings(
        data_dir=data,
        host=host.strip("[]") or "127.0.0.1",
        port=int(port),
        capacity=capacity,
        scrub_rate=scrub_rate,
        scrub_interval=scrub_interval,
    )
    run(settings, log_level)


admin = typer.Typer(help="Administration.", no_args_is_help=True)
app.add_typer(admin, name="admin")
register_iam_commands(admin)


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
