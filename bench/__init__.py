"""Benchmark harness for Pails and peer S3 servers (moto, rclone serve s3).

Modules:
    sigv4    - minimal, cached AWS Signature V4 header signer
    payload  - deterministic object contents and streaming verification
    loadgen  - multi-process asyncio/uvloop load generator (CLI: ``python -m bench.loadgen``)
    report   - result tables and JSON output
    peers    - start/stop Pails, moto and rclone on free local ports
    run      - one command that benchmarks all servers side by side (``python -m bench.run``)
"""
