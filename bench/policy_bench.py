"""The cost of authorization on the hot path: GET/HEAD ops/s on 4 KiB objects in a bucket with a
20-statement bucket policy vs a bucket without one, on one `pails server`.

    python -m bench.policy_bench [--duration 5] [--rounds 2] [--concurrency 16] [--workers 2]

Rounds alternate (no policy, policy, no policy, ...) and the best round of each is compared,
which damps the noise of a shared machine. Target: the policy bucket within 10% of the other.
Every request is evaluated against the whole policy (the caller is the bucket owner, so only
Deny statements could bind it, but every statement is matched); the bucket's policy comes from
the in-process cache, never from the database.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

import boto3
from botocore.config import Config

from bench import peers
from bench.client import Target
from bench.jobs import JobSpec
from bench.loadgen import SuiteConfig, _create_bucket, run_job
from bench.stats import PhaseStats


def twenty_statements(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict[str, Any]] = []
    for i in range(8):
        statements.append(
            {
                "Sid": f"Team{i}Read",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::1234567890{i:02d}:root"},
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"{arn}/team{i}/*",
            }
        )
    for i in range(6):
        statements.append(
            {
                "Sid": f"Office{i}",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{arn}/office{i}/*",
                "Condition": {"IpAddress": {"aws:SourceIp": f"10.{i}.0.0/16"}},
            }
        )
    for i in range(3):
        statements.append(
            {
                "Sid": f"Listing{i}",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::9999999999{i:02d}:root"},
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": [f"team{i}/*", f"shared{i}/*"]}},
            }
        )
    statements += [
        {
            "Sid": "NoDeletes",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteBucket",
            "Resource": arn,
        },
        {
            "Sid": "OnlyTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": f"{arn}/secure/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "NoOldSignatures",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"StringEquals": {"s3:signatureversion": "AWS"}},
        },
    ]
    assert len(statements) == 20
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def decision_costs(rounds: int = 20_000) -> dict[str, float]:
    """Microseconds per authorization decision (pure CPU, in this process), by caller."""
    import time

    from pails.iam.acl import private
    from pails.iam.actions import required
    from pails.iam.authorizer import BucketAuth, decide, identity_keys
    from pails.iam.credentials import Identity, IdentityKind
    from pails.iam.policy import parse_policy

    owner = Identity(
        "AK", "111111111111", "c" * 64, "owner", is_root=True, arn="arn:aws:iam::111111111111:root"
    )
    user = Identity(
        "AKU", "111111111111", "c" * 64, "u", kind=IdentityKind.USER, arn="arn:aws:iam::111111111111:user/u",
        user_name="u", policies=(parse_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                              '"Action":"s3:GetObject","Resource":"*"}]}'),),
    )  # fmt: skip
    policy = parse_policy(twenty_statements("b"), require_principal=True)
    plain = BucketAuth("b", 1, owner.canonical_id, owner.account_id, None, private(owner.canonical_id), None)
    governed = BucketAuth(
        "b", 1, owner.canonical_id, owner.account_id, policy, private(owner.canonical_id), None
    )
    access = required("GetObject", "b", "team3/object-17", {}, {})[0]
    out: dict[str, float] = {}
    for label, who, bucket in (
        ("owner, no policy", owner, plain),
        ("owner, 20-statement policy", owner, governed),
        ("IAM user, 20-statement policy", user, governed),
        ("anonymous, 20-statement policy", None, governed),
    ):
        keys = {**identity_keys(who), "aws:sourceip": ("127.0.0.1",), "aws:securetransport": ("false",),
                "s3:signatureversion": ("AWS4-HMAC-SHA256",)}  # fmt: skip
        start = time.perf_counter()
        for _ in range(rounds):
            decide(who, access, bucket, keys)
        out[label] = (time.perf_counter() - start) / rounds * 1e6
    return out


def _rates(stats: list[PhaseStats]) -> dict[str, float]:
    return {s.name.split()[0]: s.ops_per_s for s in stats if not s.errors and s.ok}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.policy_bench", description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="load generator processes")
    ap.add_argument("--decisions", action="store_true", help="only time the decision itself (no server)")
    args = ap.parse_args(argv)
    if args.decisions:
        for label, micros in decision_costs().items():
            print(f"{label:32s} {micros:7.1f} us/decision")
        return

    import asyncio

    server = peers.start("pails")
    try:
        base = Target(server.endpoint, server.access_key, server.secret_key)
        plain, governed = replace(base, bucket="bench-plain"), replace(base, bucket="bench-policy")
        for target in (plain, governed):
            asyncio.run(_create_bucket(target))
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.put_bucket_policy(Bucket=governed.bucket, Policy=twenty_statements(governed.bucket))
        best: dict[str, dict[str, float]] = {"none": {}, "policy": {}}
        spec = JobSpec(
            "small", f"4KiB c{args.concurrency}", args.concurrency, args.duration, 2_000_000, size=4096
        )
        for round_no in range(args.rounds):
            for label, target in (("none", plain), ("policy", governed)):
                cfg = SuiteConfig(
                    target=target, workers=args.workers, duration=args.duration, log=lambda _: None
                )
                stats, _ = run_job(
                    cfg, replace(spec, tag=f"r{round_no}"), args.workers, 4 * args.duration + 120, None
                )
                rates = _rates(stats)
                print(
                    f"round {round_no + 1} {label:6s} "
                    + "  ".join(f"{k} {v:8.0f}/s" for k, v in rates.items())
                )
                for op, rate in rates.items():
                    best[label][op] = max(best[label].get(op, 0.0), rate)
        print()
        print(f"{'op':6s} {'no policy':>10s} {'20-stmt policy':>15s} {'ratio':>7s}")
        verdict = True
        for op in ("PUT", "GET", "HEAD"):
            a, b = best["none"].get(op, 0.0), best["policy"].get(op, 0.0)
            ratio = b / a if a else 0.0
            print(f"{op:6s} {a:10.0f} {b:15.0f} {ratio:7.2f}")
            if op == "GET":
                verdict = ratio >= 0.9
        print(("PASS" if verdict else "FAIL") + ": GET with a 20-statement policy within 10% of no policy")
    finally:
        peers.stop(server)


if __name__ == "__main__":
    main()
