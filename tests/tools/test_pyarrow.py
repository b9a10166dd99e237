"""pyarrow.fs.S3FileSystem (the AWS SDK for C++ underneath) against Pails: a partitioned Parquet dataset."""

from __future__ import annotations

import pytest
from tooltest import MIB, content, list_keys, need


@pytest.fixture
def pafs(server):
    fs = need("pyarrow.fs", "pyarrow")
    return fs.S3FileSystem(
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=server.region,
        endpoint_override=f"{server.host}:{server.port}",
        scheme="http",
        force_virtual_addressing=False,
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
        connect_timeout=5,
        request_timeout=60,
    )


def _table():
    pa = need("pyarrow")
    n = 3_000
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "region": pa.array([("eu", "us", "ap")[i % 3] for i in range(n)]),
            "year": pa.array([2020 + i % 2 for i in range(n)], pa.int32()),
            "value": pa.array([i * 0.5 for i in range(n)]),
            "label": pa.array([f"row-{i}-ü🎉" for i in range(n)]),
        }
    )


def test_partitioned_parquet_dataset_round_trip(pafs, s3, bucket: str) -> None:
    ds = need("pyarrow.dataset", "pyarrow")
    pq = need("pyarrow.parquet", "pyarrow")
    table = _table()

    pq.write_to_dataset(table, root_path=f"{bucket}/ds", partition_cols=["region", "year"], filesystem=pafs)
    # pyarrow also writes empty directory markers ("ds/", "ds/region=eu/", ...): leave those out.
    markers = {k: size for k, size in list_keys(s3, bucket, "ds/").items() if k.endswith("/")}
    assert all(size == 0 for size in markers.values())
    keys = {k for k in list_keys(s3, bucket, "ds/") if not k.endswith("/")}
    dirs = {k.rsplit("/", 1)[0] for k in keys}
    assert dirs == {f"ds/region={r}/year={y}" for r in ("eu", "us", "ap") for y in (2020, 2021)}
    assert all(k.endswith(".parquet") for k in keys)

    back = ds.dataset(f"{bucket}/ds", filesystem=pafs, format="parquet", partitioning="hive").to_table()
    back = back.select(table.column_names).cast(table.schema).sort_by("id")
    assert back.equals(table)

    filtered = pq.read_table(f"{bucket}/ds", filesystem=pafs, filters=[("region", "=", "eu")])
    assert sorted(filtered.column("id").to_pylist()) == list(range(0, 3_000, 3))


def test_filesystem_operations(pafs, s3, bucket: str) -> None:
    pafs_mod = need("pyarrow.fs", "pyarrow")
    data = content("pyarrow-stream", 11 * MIB + 1)  # above 10 MiB: a multipart upload
    with pafs.open_output_stream(f"{bucket}/dir/big.bin") as out:
        out.write(data)
    with pafs.open_output_stream(f"{bucket}/dir/small.txt") as out:
        out.write(b"small")
    assert "-" in s3.head_object(Bucket=bucket, Key="dir/big.bin")["ETag"]  # multipart ETag
    with pafs.open_input_file(f"{bucket}/dir/big.bin") as f:
        assert f.size() == len(data)
        assert f.read_at(10, 5 * MIB - 5) == data[5 * MIB - 5 : 5 * MIB + 5]
        assert f.read() == data
    infos = pafs.get_file_info(pafs_mod.FileSelector(f"{bucket}/dir", recursive=True))
    assert {(i.path, i.size) for i in infos} == {
        (f"{bucket}/dir/big.bin", len(data)),
        (f"{bucket}/dir/small.txt", 5),
    }
    pafs.copy_file(f"{bucket}/dir/small.txt", f"{bucket}/dir/copy.txt")
    with pafs.open_input_stream(f"{bucket}/dir/copy.txt") as f:
        assert f.read() == b"small"
    pafs.delete_dir_contents(f"{bucket}/dir")
    assert pafs.get_file_info(pafs_mod.FileSelector(f"{bucket}/dir", recursive=True)) == []
    pafs.delete_dir(f"{bucket}/dir")
    assert pafs.get_file_info(pafs_mod.FileSelector(bucket, recursive=True)) == []
