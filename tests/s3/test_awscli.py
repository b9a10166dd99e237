"""AWS CLI round trips: `aws s3 cp/ls/sync/rm/mb/rb` and `aws s3api` against the server."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from clienv import AWS, aws_cli_env
from conftest import unique_bucket_name


@pytest.fixture
def aws(server, tmp_path):
    if not AWS:
        pytest.skip("aws CLI not installed")
    home = tmp_path / "home"
    home.mkdir()
    env = aws_cli_env(server, home, AWS_MAX_ATTEMPTS="1")

    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [AWS, "--endpoint-url", server.endpoint, *args]
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path, input=input
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_cli_mb_ls_rb(aws):
    name = unique_bucket_name("cli")
    out = aws("s3", "mb", f"s3://{name}").stdout
    assert f"make_bucket: {name}" in out
    assert name in aws("s3", "ls").stdout.split()
    aws("s3", "rb", f"s3://{name}")
    assert name not in aws("s3", "ls").stdout.split()


def test_cli_cp_roundtrip(aws, bucket, tmp_path):
    src = write(tmp_path / "in" / "file one.bin", os.urandom(6 * 1024 * 1024 + 3))
    aws("s3", "cp", str(src), f"s3://{bucket}/dir/file one.bin")
    listing = aws("s3", "ls", f"s3://{bucket}/dir/").stdout
    assert "file one.bin" in listing
    assert str(6 * 1024 * 1024 + 3) in listing
    dst = tmp_path / "out.bin"
    aws("s3", "cp", f"s3://{bucket}/dir/file one.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    # stdin / stdout streaming
    aws("s3", "cp", "-", f"s3://{bucket}/from-stdin.txt", input="streamed via stdin\n")
    assert aws("s3", "cp", f"s3://{bucket}/from-stdin.txt", "-").stdout == "streamed via stdin\n"


def test_cli_sync_and_rm(aws, bucket, tmp_path):
    src = tmp_path / "tree"
    files = {
        "a.txt": b"alpha",
        "nested/b.bin": os.urandom(200_000),
        "nested/deeper/c d.txt": b"with space",
        "ünïcødé/😀.txt": b"emoji",
        "empty": b"",
    }
    an_hour_ago = time.time() - 3600
    for rel, data in files.items():
        os.utime(write(src / rel, data), (an_hour_ago, an_hour_ago))
    out = aws("s3", "sync", "--no-progress", str(src), f"s3://{bucket}/sync").stdout
    assert out.count("upload:") == len(files), out
    listing = aws("s3", "ls", "--recursive", f"s3://{bucket}/sync/").stdout
    for rel in files:
        assert f"sync/{rel}" in listing, listing

    # a second sync is a no-op; a changed file is uploaded alone
    assert aws("s3", "sync", "--no-progress", str(src), f"s3://{bucket}/sync").stdout.strip() == ""
    write(src / "a.txt", b"alpha, longer now")
    out = aws("s3", "sync", "--no-progress", str(src), f"s3://{bucket}/sync").stdout
    assert out.count("upload:") == 1 and "a.txt" in out, out

    back = tmp_path / "back"
    aws("s3", "sync", f"s3://{bucket}/sync", str(back))
    cmp = filecmp.dircmp(src, back)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files, cmp.report()
    for rel in files:
        assert (back / rel).read_bytes() == (src / rel).read_bytes(), rel

    aws("s3", "rm", f"s3://{bucket}/sync/a.txt")
    assert "a.txt" not in aws("s3", "ls", "--recursive", f"s3://{bucket}/").stdout
    aws("s3", "rm", "--recursive", f"s3://{bucket}/sync/")
    assert aws("s3", "ls", "--recursive", f"s3://{bucket}/", check=False).stdout.strip() == ""


def test_cli_s3api_roundtrip(aws, bucket, tmp_path):
    src = write(tmp_path / "body.json", b'{"hello": "world"}')
    put = json.loads(
        aws(
            "s3api",
            "put-object",
            "--bucket",
            bucket,
            "--key",
            "api/obj.json",
            "--body",
            str(src),
            "--content-type",
            "application/json",
            "--metadata",
            "owner=cli,purpose=test",
        ).stdout
    )
    assert put["ETag"] == f'"{hashlib.md5(src.read_bytes()).hexdigest()}"'
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "api/obj.json").stdout)
    assert head["ContentLength"] == src.stat().st_size
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"owner": "cli", "purpose": "test"}
    out = tmp_path / "got.json"
    got = json.loads(aws("s3api", "get-object", "--bucket", bucket, "--key", "api/obj.json", str(out)).stdout)
    assert got["ETag"] == put["ETag"]
    assert out.read_bytes() == src.read_bytes()
    ranged = tmp_path / "range.json"
    aws(
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj.json",
        "--range",
        "bytes=2-6",
        str(ranged),
    )
    assert ranged.read_bytes() == b"hello"
    listing = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "api/").stdout)
    assert [o["Key"] for o in listing["Contents"]] == ["api/obj.json"]
    loc = json.loads(aws("s3api", "get-bucket-location", "--bucket", bucket).stdout)
    assert loc.get("LocationConstraint") in (None, "")
    aws("s3api", "delete-object", "--bucket", bucket, "--key", "api/obj.json")
    missing = aws("s3api", "head-object", "--bucket", bucket, "--key", "api/obj.json", check=False)
    assert missing.returncode != 0
    assert "404" in missing.stderr


def test_cli_reports_s3_errors(aws):
    proc = aws(
        "s3api", "get-object", "--bucket", unique_bucket_name("missing"), "--key", "k", "out", check=False
    )
    assert proc.returncode != 0
    assert "NoSuchBucket" in proc.stderr, proc.stderr
