"""Several server processes sharing one metadata store (pails server --workers 2): an IAM change made
through one is enforced by all within the key cache's TTL (1 s, decision 0012)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT
from iamutil import authenticated, client, name

pytestmark = [pytest.mark.auth, pytest.mark.needs_process]
TTL = 1.0


def test_disabled_key_stops_on_every_worker(start_server):
    srv = start_server(args=["--workers", "2"])
    iam = client("iam", srv.endpoint, srv.access_key, srv.secret_key)
    user = name()
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    for _ in range(20):  # new connections: both workers see (and cache) the key
        s3 = client("s3", srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        authenticated(s3.list_buckets)  # no policy: AccessDenied, after authentication
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    time.sleep(TTL + 0.2)
    for _ in range(20):
        s3 = client("s3", srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        with pytest.raises(ClientError) as exc:
            s3.list_buckets()
        assert exc.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_accounts_created_on_one_worker_are_known_to_all(start_server):
    """identity_of/account_of (bucket owners) are answered from a per-process account directory."""
    srv = start_server(args=["--workers", "2"])
    admin = client("s3", srv.endpoint, srv.access_key, srv.secret_key)
    env = {
        "PYTHONPATH": str(ROOT),
        "AWS_ACCESS_KEY_ID": srv.access_key,
        "AWS_SECRET_ACCESS_KEY": srv.secret_key,
        "AWS_DEFAULT_REGION": srv.region,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pails",
            "admin",
            "account",
            "create",
            name("acct"),
            "--json",
            "--endpoint",
            srv.endpoint,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    tenant = json.loads(proc.stdout)
    mine = client("s3", srv.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
    bucket = name("bkt")
    mine.create_bucket(Bucket=bucket)
    time.sleep(TTL + 0.2)
    try:
        for _ in range(10):
            s3 = client("s3", srv.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=tenant["account_id"])
        assert admin.list_buckets()["Owner"]["ID"] != tenant["canonical_id"]
    finally:
        mine.delete_bucket(Bucket=bucket)
