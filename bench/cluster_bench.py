"""The cost of replication: the same load against `pails server` and `pails dev-cluster` (three
storage nodes, R=3, W=2), printed side by side.

    python -m bench.cluster_bench [--duration 5] [--quick]

Small-object PUT/GET/HEAD ops/s and 64 MiB / 1 GiB PUT/GET MB/s, as bench.run measures them
(bench/results/<timestamp>.json keeps the run).
"""

from __future__ import annotations

import sys

from bench import run


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--servers" not in args:
        args = ["--servers", "pails,cluster", *args]
    run.main(args)


if __name__ == "__main__":
    main()
