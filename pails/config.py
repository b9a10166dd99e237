"""One typed settings object: defaults < PAILS_* environment < command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("./data")
    address: str = "127.0.0.1:9000"
    domain: str = "localhost"
    region: str = "us-east-1"
    root_access_key: str | None = field(default=None, repr=False)
    root_secret_key: str | None = field(default=None, repr=False)
    gc_interval_seconds: float = 30.0
    gc_grace_seconds: float = 3600.0
    compact_garbage_ratio: float = 0.5
    # Completed/aborted multipart upload rows are kept this long (retried completions), then purged.
    upload_retention_seconds: float = 7 * 86400.0
    log_level: str = "info"
    # sqlite:///abs/path or postgresql://user@host:port/db; None: sqlite in DATA_DIR/meta.db.
    metadata_url: str | None = field(default=None, repr=False)
    # The bucket authorization cache: redis://host:port/db[?prefix=NAME] shares it between
    # processes (None: in-process only); entries live cache_ttl_seconds without Redis.
    cache_url: str | None = field(default=None, repr=False)
    cache_ttl_seconds: float = 1.0
    # Encrypts secrets at rest and signs session tokens; None: DATA_DIR/server-key (generated once).
    # Gateways sharing one metadata database must all be given the same (docs/iam.md).
    server_key: str | None = field(default=None, repr=False)
    iam_cache_ttl_seconds: float = 1.0
    # Test-only: the shortest DurationSeconds STS accepts (AWS: 900), to test expiry without waiting.
    sts_min_duration_seconds: int = 900

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply non-None overrides (the command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_ENV_PREFIX = "PAILS_"


def _coerce(value: str, current: object) -> object:
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(current, float):
        return float(value)
    if isinstance(current, int):
        return int(value)
    if isinstance(current, Path):
        return Path(value)
    return value


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Defaults overridden by PAILS_<FIELD> environment variables (e.g. PAILS_ROOT_ACCESS_KEY)."""
    env = os.environ if environ is None else environ
    base = Settings()
    overrides: dict[str, object] = {}
    for f in fields(Settings):
        name = _ENV_PREFIX + f.name.upper()
        if name in env:
            overrides[f.name] = _coerce(env[name], getattr(base, f.name))
    return replace(base, **overrides)  # type: ignore[arg-type]
