"""s3fs / fsspec (aiobotocore underneath) against Pails."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooltest import MANY_KEYS, MANY_PREFIXES, MANY_TOP, MIB, content, list_keys, need


@pytest.fixture
def fs(server):
    s3fs = need("s3fs")
    fs = s3fs.S3FileSystem(
        key=server.access_key,
        secret=server.secret_key,
        endpoint_url=server.endpoint,
        client_kwargs={"region_name": server.region},
        config_kwargs={"s3": {"addressing_style": "path"}, "retries": {"total_max_attempts": 1}},
        use_listings_cache=False,
        skip_instance_cache=True,
    )
    return fs


def test_open_write_read_ls_glob_rm(fs, s3, bucket: str) -> None:
    files = {
        "data/a.csv": b"x,y\n1,2\n",
        "data/b.csv": b"x,y\n3,4\n",
        "data/nested/c.csv": b"x,y\n5,6\n",
        "data/readme.txt": b"not a csv",
        "data/ünï 🎉.csv": b"x,y\n7,8\n",
        "data/empty.csv": b"",
    }
    for key, data in files.items():
        with fs.open(f"{bucket}/{key}", "wb") as f:
            f.write(data)
    assert list_keys(s3, bucket) == {k: len(v) for k, v in files.items()}

    for key, data in files.items():
        with fs.open(f"{bucket}/{key}", "rb") as f:
            assert f.read() == data
        assert fs.cat_file(f"{bucket}/{key}") == data
    with fs.open(f"{bucket}/data/a.csv", "rb") as f:
        f.seek(2)
        assert f.read(3) == b"y\n1"

    listing = fs.ls(f"{bucket}/data", detail=True)
    by_name = {e["name"]: e for e in listing}
    assert set(by_name) == {
        f"{bucket}/data/a.csv",
        f"{bucket}/data/b.csv",
        f"{bucket}/data/nested",
        f"{bucket}/data/readme.txt",
        f"{bucket}/data/ünï 🎉.csv",
        f"{bucket}/data/empty.csv",
    }
    assert by_name[f"{bucket}/data/nested"]["type"] == "directory"
    assert by_name[f"{bucket}/data/a.csv"]["size"] == len(files["data/a.csv"])
    info = fs.info(f"{bucket}/data/b.csv")
    assert info["size"] == len(files["data/b.csv"]) and info["type"] == "file"
    assert fs.exists(f"{bucket}/data/nested")
    assert not fs.exists(f"{bucket}/data/missing.csv")

    assert sorted(fs.glob(f"{bucket}/data/*.csv")) == sorted(
        f"{bucket}/{k}" for k in files if k.endswith(".csv") and k.count("/") == 1
    )
    assert sorted(fs.glob(f"{bucket}/data/**/*.csv")) == sorted(
        f"{bucket}/{k}" for k in files if k.endswith(".csv")
    )
    assert sorted(fs.find(f"{bucket}/data")) == sorted(f"{bucket}/{k}" for k in files)

    fs.rm(f"{bucket}/data/readme.txt")
    assert "data/readme.txt" not in list_keys(s3, bucket)
    fs.rm(f"{bucket}/data", recursive=True)
    assert list_keys(s3, bucket) == {}


def test_multipart_write_and_copy(fs, s3, bucket: str) -> None:
    data = content("s3fs-multipart", 11 * MIB + 5)
    with fs.open(f"{bucket}/big.bin", "wb", block_size=5 * MIB) as f:
        for i in range(0, len(data), MIB):  # written in 1 MiB pieces, uploaded as 5 MiB parts
            f.write(data[i : i + MIB])
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")
    assert fs.cat_file(f"{bucket}/big.bin") == data
    assert (
        fs.cat_file(f"{bucket}/big.bin", start=5 * MIB - 3, end=5 * MIB + 3)
        == data[5 * MIB - 3 : 5 * MIB + 3]
    )

    fs.copy(f"{bucket}/big.bin", f"{bucket}/copy.bin")
    assert fs.cat_file(f"{bucket}/copy.bin") == data


def test_put_get_directory(fs, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_bytes(b"1")
    (src / "sub" / "two.txt").write_bytes(b"22")
    fs.put(str(src), f"{bucket}/tree", recursive=True)
    assert sorted(fs.find(f"{bucket}/tree")) == [f"{bucket}/tree/one.txt", f"{bucket}/tree/sub/two.txt"]

    dst = tmp_path / "dst"
    fs.get(f"{bucket}/tree/", str(dst), recursive=True)
    assert (dst / "one.txt").read_bytes() == b"1"
    assert (dst / "sub" / "two.txt").read_bytes() == b"22"


def test_listing_past_one_page(fs, many_keys_bucket: str) -> None:
    assert fs.find(many_keys_bucket) == [f"{many_keys_bucket}/{k}" for k in sorted(MANY_KEYS)]
    top = sorted(fs.ls(f"{many_keys_bucket}/many", detail=False))
    assert top == sorted(f"{many_keys_bucket}/{k}".rstrip("/") for k in MANY_TOP + MANY_PREFIXES)
    assert len(fs.glob(f"{many_keys_bucket}/many/k-00*")) == 1_000
