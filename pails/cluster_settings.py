"""Settings of a cluster gateway (`pails gateway`, `pails dev-cluster`): PAILS_* environment
variables over defaults, command-line flags over both, as pails.config does for the server."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pails.config import _coerce


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    replicas: int = 3
    write_quorum: int = 2
    cluster_secret: str | None = field(default=None, repr=False)
    # The gateway -> node client.
    node_connect_timeout: float = 1.0
    node_read_timeout: float = 5.0
    # A chunk upload's answer waits for the node's fsync, slow on a busy disk: a longer timeout.
    node_write_timeout: float = 30.0
    # After W acknowledgements, how long a write waits for the other replicas before it answers
    # (they are then recorded for repair); bounds the latency a hung node adds to a PUT.
    write_straggler_seconds: float = 1.0
    # Node health: a probe every interval; a node that does not answer within the timeout is down.
    probe_interval_seconds: float = 2.0
    probe_timeout_seconds: float = 2.0
    # How often the ring is re-read from the metadata database (changes made by other gateways).
    ring_refresh_seconds: float = 5.0
    # Background jobs (only on the gateway holding the lease).
    lease_seconds: float = 15.0
    repair_interval_seconds: float = 5.0
    repair_batch: int = 200
    antientropy_interval_seconds: float = 300.0
    antientropy_batch: int = 1000  # chunk ids listed per node request
    background_copies_per_second: float = 200.0  # replica copies (repair, anti-entropy, rebalance)

    def with_overrides(self, **overrides: Any) -> ClusterSettings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        if not 1 <= self.write_quorum <= self.replicas:
            raise ValueError(
                f"need 1 <= write quorum <= replicas, got W={self.write_quorum}, R={self.replicas}"
            )
        if not self.cluster_secret:
            raise ValueError("set PAILS_CLUSTER_SECRET (the secret shared by gateways and nodes)")


def load_cluster_settings(environ: dict[str, str] | None = None) -> ClusterSettings:
    env = os.environ if environ is None else environ
    base = ClusterSettings()
    overrides: dict[str, object] = {}
    for f in fields(ClusterSettings):
        name = "PAILS_" + f.name.upper()
        if name in env:
            current = getattr(base, f.name)
            overrides[f.name] = env[name] if current is None else _coerce(env[name], current)
    return replace(base, **overrides)  # type: ignore[arg-type]
