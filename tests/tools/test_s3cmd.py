"""s3cmd (PyPI package s3cmd) against Pails: put, get, ls, sync both ways, del. SigV4, path style."""

from __future__ import annotations

import hashlib
import sys
import uuid
from pathlib import Path

import pytest
from tooltest import (
    MANY_KEYS,
    MANY_PREFIXES,
    MANY_TOP,
    MIB,
    assert_same_tree,
    clean_env,
    content,
    empty_and_delete_bucket,
    list_keys,
    make_tree,
    need_executable,
    read_tree,
    run,
)


@pytest.fixture
def s3cmd(server, tmp_path: Path):
    exe = need_executable("s3cmd", "s3cmd")
    cfg = tmp_path / "s3cfg"
    hostport = f"{server.host}:{server.port}"
    cfg.write_text(
        "\n".join(
            [
                "[default]",
                f"access_key = {server.access_key}",
                f"secret_key = {server.secret_key}",
                f"host_base = {hostport}",
                f"host_bucket = {hostport}",  # no %(bucket)s: path-style requests
                f"bucket_location = {server.region}",
                "use_https = False",
                "signature_v2 = False",
                "check_ssl_certificate = False",
                "guess_mime_type = False",
                "",
            ]
        ),
        encoding="utf-8",
    )
    env = clean_env()
    env["HOME"] = str(tmp_path)  # no ~/.s3cfg from the machine

    def call(*args: str, check: bool = True):
        # The script's shebang names the venv's python; call it through this interpreter all the same.
        return run([sys.executable, exe, "-c", str(cfg), "--no-progress", *args], env=env, check=check)

    return call


def test_put_get_ls_del(s3cmd, s3, bucket: str, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello from s3cmd\n")
    big_data = content("s3cmd-big", 3 * MIB + 17)
    big = tmp_path / "big.bin"
    big.write_bytes(big_data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")

    s3cmd("put", str(small), f"s3://{bucket}/dir/small.txt")
    s3cmd("put", str(big), f"s3://{bucket}/dir/sub/big.bin")
    s3cmd("put", str(empty), f"s3://{bucket}/empty")
    assert list_keys(s3, bucket) == {"dir/small.txt": 17, "dir/sub/big.bin": len(big_data), "empty": 0}

    got = tmp_path / "got.bin"
    s3cmd("get", f"s3://{bucket}/dir/sub/big.bin", str(got))
    assert got.read_bytes() == big_data
    got_empty = tmp_path / "got-empty"
    s3cmd("get", f"s3://{bucket}/empty", str(got_empty))
    assert got_empty.read_bytes() == b""

    top = s3cmd("ls", f"s3://{bucket}/").stdout
    assert "DIR" in top and f"s3://{bucket}/dir/" in top
    assert f"s3://{bucket}/empty" in top
    recursive = s3cmd("ls", "--recursive", f"s3://{bucket}/dir/").stdout
    assert f"s3://{bucket}/dir/small.txt" in recursive
    assert f"s3://{bucket}/dir/sub/big.bin" in recursive
    assert str(len(big_data)) in recursive
    buckets = s3cmd("ls").stdout
    assert f"s3://{bucket}" in buckets

    s3cmd("del", f"s3://{bucket}/dir/small.txt")
    assert "dir/small.txt" not in list_keys(s3, bucket)
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}/")
    assert list_keys(s3, bucket) == {}


def test_sync_up_and_down(s3cmd, s3, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)

    s3cmd("sync", f"{src}/", f"s3://{bucket}/sync/")
    assert list_keys(s3, bucket, "sync/") == {f"sync/{rel}": len(data) for rel, data in files.items()}

    # Nothing changed: the second sync compares sizes and MD5 ETags and uploads nothing.
    again = s3cmd("sync", "--verbose", f"{src}/", f"s3://{bucket}/sync/").stdout
    assert "upload:" not in again, again

    down = tmp_path / "down"
    down.mkdir()
    s3cmd("sync", f"s3://{bucket}/sync/", f"{down}/")
    assert_same_tree(read_tree(down), files)

    # A local change and a deletion propagate with --delete-removed.
    (src / "top.txt").write_bytes(b"changed content")
    (src / "nested" / "other" / "x.bin").unlink()
    s3cmd("sync", "--delete-removed", f"{src}/", f"s3://{bucket}/sync/")
    keys = list_keys(s3, bucket, "sync/")
    assert "sync/nested/other/x.bin" not in keys
    assert s3.get_object(Bucket=bucket, Key="sync/top.txt")["Body"].read() == b"changed content"


def test_multipart_put_cp_mv_info_and_buckets(s3cmd, s3, tmp_path: Path) -> None:
    name = f"pt-s3cmd-{uuid.uuid4().hex[:12]}"
    s3cmd("mb", f"s3://{name}")
    try:
        data = content("s3cmd-multipart", 11 * MIB + 9)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        s3cmd("put", "--multipart-chunk-size-mb=5", str(src), f"s3://{name}/mp/big.bin")
        head = s3.head_object(Bucket=name, Key="mp/big.bin")
        assert head["ContentLength"] == len(data)
        assert head["ETag"].strip('"').endswith("-3"), head["ETag"]

        info = s3cmd("info", f"s3://{name}/mp/big.bin").stdout
        assert str(len(data)) in info
        assert hashlib.md5(data).hexdigest() in info  # s3cmd's own md5 attribute, kept as x-amz-meta-*

        s3cmd("cp", f"s3://{name}/mp/big.bin", f"s3://{name}/copy/big.bin")
        s3cmd("mv", f"s3://{name}/copy/big.bin", f"s3://{name}/moved/big.bin")
        assert list_keys(s3, name) == {"mp/big.bin": len(data), "moved/big.bin": len(data)}
        got = tmp_path / "got.bin"
        s3cmd("get", f"s3://{name}/moved/big.bin", str(got))  # s3cmd checks the MD5 it stored
        assert got.read_bytes() == data

        s3cmd("del", "--recursive", "--force", f"s3://{name}/")
        s3cmd("rb", f"s3://{name}")
        assert name not in s3cmd("ls").stdout
    finally:
        empty_and_delete_bucket(s3, name)


def test_listing_past_one_page(s3cmd, many_keys_bucket: str) -> None:
    lines = s3cmd("ls", "--recursive", f"s3://{many_keys_bucket}/").stdout.splitlines()
    urls = [line.split()[-1] for line in lines if line.strip()]
    assert urls == [f"s3://{many_keys_bucket}/{k}" for k in sorted(MANY_KEYS)]
    lines = s3cmd("ls", f"s3://{many_keys_bucket}/many/").stdout.splitlines()
    dirs = sorted(line.split()[-1] for line in lines if line.split()[0] == "DIR")
    files = sorted(line.split()[-1] for line in lines if line.split()[0] != "DIR")
    assert dirs == [f"s3://{many_keys_bucket}/{p}" for p in MANY_PREFIXES]
    assert files == [f"s3://{many_keys_bucket}/{k}" for k in sorted(MANY_TOP)]
