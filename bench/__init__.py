"""Benchmark harness for Pails and peer S3 servers (moto, rclone serve s3).

Entry points: ``python -m bench.run`` (all servers side by side) and
``python -m bench.loadgen`` (one endpoint).  Modules: ``sigv4`` (signer), ``payload``
(deterministic contents + verifier), ``rawhttp`` (cheap small-request client), ``client``
(streaming large-object client), ``jobs`` (worker-side phases), ``stats``, ``cpu``,
``report``, ``loadgen``, ``peers`` (server processes), ``run``, ``sink`` (client ceiling).
"""
