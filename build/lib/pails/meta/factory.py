"""Choose the metadata store from a URL: ``sqlite:///abs/path`` or ``postgresql://user@host:port/db``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pails.meta.store import MetadataStore

_POOL_OPTIONS = ("pool_min", "pool_max")


class MetadataUrlError(ValueError):
    """The metadata URL names no supported backend or is malformed."""


def default_metadata_url(data_dir: Path) -> str:
    return f"sqlite://{(data_dir / 'meta.db').resolve()}"


def describe(url: str) -> str:
    """The URL without its password, for logs and banners."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def create_metadata_store(url: str) -> MetadataStore:
    """A (not yet opened) store for `url`.

    PostgreSQL URLs may carry ``pool_min``/``pool_max`` query parameters (the pool size of this
    gateway); any other query parameter goes to asyncpg (e.g. ``sslmode``).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = parts.netloc + parts.path  # sqlite:///abs/path -> /abs/path
        if not path or not Path(path).is_absolute():
            raise MetadataUrlError(
                f"a SQLite metadata URL needs an absolute path (sqlite:///abs/path): {url}"
            )
        from pails.meta.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(Path(path))
    if scheme in ("postgresql", "postgres"):
        query = parse_qsl(parts.query, keep_blank_values=True)
        pool = {name: value for name, value in query if name in _POOL_OPTIONS}
        rest = [(name, value) for name, value in query if name not in _POOL_OPTIONS]
        dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        try:
            sizes = {name: int(value) for name, value in pool.items()}
        except ValueError:
            raise MetadataUrlError(f"pool_min/pool_max must be integers: {describe(url)}") from None
        from pails.meta.postgres import PostgresMetadataStore

        try:
            return PostgresMetadataStore(dsn, **sizes)
        except ValueError as exc:
            raise MetadataUrlError(f"{exc}: {describe(url)}") from None
    raise MetadataUrlError(
        f"unsupported metadata URL {describe(url)!r}: use sqlite:///path or postgresql://..."
    )
