"""Choosing the metadata store from a URL, the setting and the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pails.cli import app
from pails.config import load_settings
from pails.meta.factory import MetadataUrlError, create_metadata_store, default_metadata_url, describe
from pails.meta.postgres import PostgresMetadataStore
from pails.meta.sqlite import SqliteMetadataStore


def test_sqlite_urls(tmp_path: Path) -> None:
    store = create_metadata_store(f"sqlite://{tmp_path}/m.db")
    assert isinstance(store, SqliteMetadataStore) and store.path == tmp_path / "m.db"
    default = default_metadata_url(tmp_path)
    assert default == f"sqlite://{tmp_path.resolve()}/meta.db"
    store = create_metadata_store(default)
    assert isinstance(store, SqliteMetadataStore) and store.path == tmp_path.resolve() / "meta.db"
    with pytest.raises(MetadataUrlError):
        create_metadata_store("sqlite://relative/path.db")


def test_postgres_urls() -> None:
    store = create_metadata_store("postgresql://u:secret@db:5433/pails?pool_min=1&pool_max=4&sslmode=disable")
    assert isinstance(store, PostgresMetadataStore)
    assert store.dsn == "postgresql://u:secret@db:5433/pails?sslmode=disable"
    assert (store._pool_min, store._pool_max) == (1, 4)
    assert isinstance(create_metadata_store("postgres://db/pails"), PostgresMetadataStore)
    with pytest.raises(MetadataUrlError):
        create_metadata_store("postgresql://db/pails?pool_max=many")
    with pytest.raises(MetadataUrlError):
        create_metadata_store("postgresql://db/pails?pool_min=5&pool_max=4")
    with pytest.raises(MetadataUrlError):
        create_metadata_store("mysql://db/pails")
    assert describe("postgresql://u:secret@db/pails") == "postgresql://u:***@db/pails"
    assert describe("postgresql://u@db/pails") == "postgresql://u@db/pails"


def test_setting_and_flag() -> None:
    assert load_settings({}).metadata_url is None
    url = "postgresql://u@db/pails"
    assert load_settings({"PAILS_METADATA_URL": url}).metadata_url == url
    result = CliRunner().invoke(app, ["server", "--metadata", "mysql://db/x"])
    assert result.exit_code == 2 and "unsupported metadata URL" in result.output
