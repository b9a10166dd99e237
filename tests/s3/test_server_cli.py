"""The `pails server` command line: entry points, options, --domain for virtual-hosted-style requests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import unique_bucket_name
from s3util import parse_error

pytestmark = pytest.mark.needs_process


@pytest.mark.parametrize(
    "cmd",
    [
        [sys.executable, "-m", "pails", "server", "--help"],
        [str(Path(sys.executable).parent / "pails"), "server", "--help"],
    ],
    ids=["python-m", "console-script"],
)
def test_server_help(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for opt in ("--data", "--address", "--domain", "--region"):
        assert opt in proc.stdout, proc.stdout


def test_custom_domain_virtual_hosting(start_server):
    srv = start_server(args=["--domain", "s3.pails.test"])
    s3 = srv.client()
    bucket = unique_bucket_name()
    s3.create_bucket(Bucket=bucket)
    raw = srv.raw
    host = f"{bucket}.s3.pails.test:{srv.port}"
    r = raw.request("PUT", "/v/k", body=b"custom domain", host_header=host)
    assert r.status == 200, r.describe()
    assert s3.get_object(Bucket=bucket, Key="v/k")["Body"].read() == b"custom domain"
    r = raw.request("GET", "/v/k", host_header=host)
    assert r.status == 200 and r.body == b"custom domain", r.describe()
    # path style still works with the domain itself as Host
    r = raw.request("GET", f"/{bucket}/v/k", host_header=f"s3.pails.test:{srv.port}")
    assert r.status == 200 and r.body == b"custom domain", r.describe()
    r = raw.request("GET", "/v/k", host_header=f"{unique_bucket_name('missing')}.s3.pails.test:{srv.port}")
    assert r.status == 404, r.describe()
    assert parse_error(r.body)["Code"] == "NoSuchBucket"


@pytest.mark.auth
def test_root_credentials_come_from_env(start_server):
    srv = start_server()
    from s3util import Creds

    other = srv.raw.request("GET", "/", creds=Creds("SOMEONEELSE", srv.secret_key, srv.region))
    assert other.status == 403, other.describe()
    assert srv.raw.request("GET", "/").status == 200
