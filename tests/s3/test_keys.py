"""Key handling: length limits, hostile keys round-trip exactly, and never escape the data dir."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

TOKEN = "pailsTok" + uuid.uuid4().hex[:10]

HOSTILE_KEYS = {
    "dotdot-etc-passwd": "../../etc/passwd",
    "deep-escape": "../" * 12 + f"tmp/{TOKEN}-escape",
    "double-slash": "a//b",
    "triple-slash-leading": "///x",
    "leading-slash": "/leading-slash",
    "trailing-slash": "dir/",
    "encoded-slash": "%2F",
    "encoded-traversal": "a%2F..%2F..%2Fescape%2e%2e",
    "spaces": "with space  and   spaces",
    "edge-spaces": " leading and trailing ",
    "emoji": "emoji 😀🎉/ファイル.txt",
    "control-chars": "ctl\x01\x02\x1b\x1f\x7f",
    "tab": "tab\there",
    "newline": "new\nline",
    "carriage-return": "carriage\rreturn",
    "dot": ".",
    "dotdot": "..",
    "dot-segments": "a/./b/../c",
    "backslashes": "..\\..\\windows\\system32",
    "query-like": "q?x=1&y=2#frag",
    "plus": "a+b+c",
    "percent": "100% sure %zz %",
    "xml-special": '<tag attr="v">&amp;\'</tag>',
    "rtl-override": "abc\u202etxt.exe",
    "nbsp-zwj": "a\u00a0b\u200dc",
    "tilde-star": "~user/*?[]",
    "long-unicode": "é" * 512,  # exactly 1024 UTF-8 bytes
    "max-ascii": "k" * 1024,
}


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("key", list(HOSTILE_KEYS.values()), ids=list(HOSTILE_KEYS))
def test_hostile_key_roundtrip(s3, bucket, key):
    body = ("body of " + key).encode("utf-8", "surrogatepass")
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"k": "v"})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert got["Metadata"] == {"k": "v"}
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    v2 = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in v2["Contents"]] == [key]
    v2p = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert [o["Key"] for o in v2p["Contents"]] == [key]
    v1 = s3.list_objects(Bucket=bucket)
    assert [o["Key"] for o in v1["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key=key)
    assert err(e) == ("NoSuchKey", 404)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_similar_keys_are_distinct(s3, bucket):
    """Keys that a naive path mapping would collapse onto each other must stay distinct."""
    keys = ["a/b", "a//b", "a/./b", "a/x/../b", "a%2Fb", "a/b/", "/a/b", "a\\b", "A/b"]
    for i, k in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=k, Body=str(i).encode())
    for i, k in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == str(i).encode(), k
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_key_and_prefix_of_same_name(s3, bucket):
    """A key 'x' and a key 'x/y' must coexist (no file-vs-directory clash)."""
    s3.put_object(Bucket=bucket, Key="x", Body=b"file")
    s3.put_object(Bucket=bucket, Key="x/y", Body=b"child")
    s3.put_object(Bucket=bucket, Key="x/", Body=b"dir marker")
    assert s3.get_object(Bucket=bucket, Key="x")["Body"].read() == b"file"
    assert s3.get_object(Bucket=bucket, Key="x/y")["Body"].read() == b"child"
    assert s3.get_object(Bucket=bucket, Key="x/")["Body"].read() == b"dir marker"
    s3.delete_object(Bucket=bucket, Key="x")
    assert s3.get_object(Bucket=bucket, Key="x/y")["Body"].read() == b"child"


@pytest.mark.parametrize(
    "key",
    ["k" * 1025, "é" * 513, "k" * 1023 + "é", "k" * 2048],
    ids=["1025-ascii", "1026-bytes-unicode", "1025-bytes-mixed", "2048"],
)
def test_key_too_long(s3, bucket, key):
    assert len(key.encode()) > 1024
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert err(e) == ("KeyTooLongError", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _snapshot(root: Path) -> set[str]:
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


@pytest.mark.needs_process
def test_hostile_keys_stay_inside_data_dir(server, s3, bucket):
    data_dir = server.data_dir.resolve()
    outside_root = data_dir.parent.parent  # the session's pytest tmp dir
    before_outside = {
        p for p in _snapshot(outside_root) if not p.startswith(os.path.relpath(data_dir, outside_root))
    }
    start = time.time() - 1
    keys = [*HOSTILE_KEYS.values(), f"../{TOKEN}", f"../../{TOKEN}/passwd", f"/{TOKEN}-abs", f"..%2F{TOKEN}"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"hostile")
    listed = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        listed.update(o["Key"] for o in page.get("Contents", []))
    assert listed == set(keys)

    # 1. nothing inside the data dir is named after key text
    fragments = ["passwd", TOKEN, "😀", "ファイル", "with space", "windows", "system32", "leading-slash"]
    inside = _snapshot(data_dir)
    offenders = [p for p in inside if any(f in p for f in fragments)]
    assert offenders == [], f"data dir paths contain key text: {offenders[:10]}"

    # 2. nothing new appeared next to / above the data dir
    after_outside = {
        p for p in _snapshot(outside_root) if not p.startswith(os.path.relpath(data_dir, outside_root))
    }
    new = sorted(p for p in after_outside - before_outside if not p.endswith(".log"))
    assert new == [], f"files created outside the data dir: {new[:10]}"

    # 3. no etc/passwd or token file was created in any ancestor, nor in /tmp
    for ancestor in [data_dir, *data_dir.parents]:
        candidate = ancestor / "etc" / "passwd"
        if candidate.exists():
            assert candidate.stat().st_mtime < start, f"{candidate} was modified during the test"
        assert not (ancestor / TOKEN).exists()
    assert not Path(f"/tmp/{TOKEN}-escape").exists()
    assert not any(TOKEN in name for name in os.listdir("/tmp"))
    assert not any(TOKEN in name for name in os.listdir("/"))


def test_prefix_only_key_is_not_an_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/file", Body=b"x")
    for k in ("dir", "dir/", "di"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key=k)
        assert err(e) == ("NoSuchKey", 404), k
