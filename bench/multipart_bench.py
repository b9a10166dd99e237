"""Multipart upload throughput and CompleteMultipartUpload latency, Pails vs moto side by side.

    python -m bench.multipart_bench [--servers pails,moto] [--size-mib 1024] [--part-mib 16]
                                    [--in-flight 4] [--rounds 2]

Each server is started by bench.peers (a subprocess on a free 127.0.0.1 port, stopped by PID).
Per round: CreateMultipartUpload, the parts uploaded by --in-flight threads with boto3 (one
pre-generated random part body, so the client does no per-part work beyond sending it),
CompleteMultipartUpload timed on its own, then a HEAD checks the size and the multipart ETag.
Results are printed and written to bench/results/multipart-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import peers

MiB = 1024 * 1024
RESULTS = Path(__file__).resolve().parent / "results"


def _client(server: peers.Server, connections: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"total_max_attempts": 1},
            max_pool_connections=connections,
            read_timeout=300,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def one_round(s3: Any, bucket: str, key: str, body: bytes, parts: int, in_flight: int) -> dict[str, float]:
    started = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def send(number: int) -> dict[str, Any]:
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": r["ETag"]}

    with ThreadPoolExecutor(in_flight) as pool:
        done = list(pool.map(send, range(1, parts + 1)))
    completing = time.perf_counter()
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    finished = time.perf_counter()
    head = s3.head_object(Bucket=bucket, Key=key)
    digest = hashlib.md5(hashlib.md5(body).digest() * parts).hexdigest()
    if head["ContentLength"] != len(body) * parts or head["ETag"] != f'"{digest}-{parts}"':
        raise RuntimeError(f"wrong object after completion: {head['ContentLength']} {head['ETag']}")
    s3.delete_object(Bucket=bucket, Key=key)
    total = len(body) * parts
    return {
        "upload_mb_s": total / 1e6 / (finished - started),
        "parts_mb_s": total / 1e6 / (completing - started),
        "complete_ms": (finished - completing) * 1000,
    }


def bench_server(name: str, size_mib: int, part_mib: int, in_flight: int, rounds: int) -> dict[str, Any]:
    server = peers.start(name)
    try:
        s3 = _client(server, in_flight + 2)
        s3.create_bucket(Bucket="mpbench")
        body = os.urandom(part_mib * MiB)
        parts = max(1, size_mib // part_mib)
        runs = [one_round(s3, "mpbench", f"big-{i}", body, parts, in_flight) for i in range(rounds)]
        return {
            "server": name,
            "rounds": runs,
            "upload_mb_s": statistics.median(r["upload_mb_s"] for r in runs),
            "complete_ms": statistics.median(r["complete_ms"] for r in runs),
        }
    finally:
        peers.stop(server)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.multipart_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--servers", default="pails,moto")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--part-mib", type=int, default=16)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    results: list[dict[str, Any]] = []
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        try:
            results.append(bench_server(name, args.size_mib, args.part_mib, args.in_flight, args.rounds))
        except Exception as exc:  # one failing peer must not hide the others' figures
            results.append({"server": name, "error": repr(exc)})
    label = f"{args.size_mib} MiB in {args.part_mib} MiB parts, {args.in_flight} in flight"
    print(f"multipart upload, {label}")
    print(f"{'server':<8} {'upload MB/s':>12} {'complete ms':>12}")
    for r in results:
        if "error" in r:
            print(f"{r['server']:<8} error: {r['error']}")
        else:
            print(f"{r['server']:<8} {r['upload_mb_s']:>12,.0f} {r['complete_ms']:>12,.1f}")
    by = {r["server"]: r for r in results if "error" not in r}
    if "pails" in by and "moto" in by:
        print(
            f"pails/moto: upload {by['pails']['upload_mb_s'] / by['moto']['upload_mb_s']:.1f}x, "
            f"complete {by['moto']['complete_ms'] / max(by['pails']['complete_ms'], 1e-3):.0f}x faster"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"multipart-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"config": vars(args), "results": results}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
