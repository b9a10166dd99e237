"""DuckDB with its httpfs extension (from the duckdb-extension-httpfs package, LOADed by path, never
downloaded) reading and writing Parquet on Pails."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooltest import MANY_KEYS, MANY_TOP, list_keys, need


def _httpfs_extension(duckdb) -> Path:
    package = need("duckdb_extension_httpfs", "duckdb-extension-httpfs")
    root = Path(package.__file__).parent / "extensions"
    path = root / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.is_file():
        shipped = sorted(p.parent.name for p in root.glob("*/httpfs.duckdb_extension"))
        pytest.fail(
            f"duckdb {duckdb.__version__} but duckdb-extension-httpfs ships {shipped}: pin both alike"
        )
    return path


@pytest.fixture
def con(server, tmp_path: Path):
    duckdb = need("duckdb")
    ext = _httpfs_extension(duckdb)
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": str(tmp_path / "duckdb-ext"),
        }
    )
    con.execute(f"LOAD '{ext}'")
    con.execute(f"SET s3_endpoint = '{server.host}:{server.port}'")
    con.execute("SET s3_url_style = 'path'")
    con.execute("SET s3_use_ssl = false")
    con.execute(f"SET s3_region = '{server.region}'")
    con.execute(f"SET s3_access_key_id = '{server.access_key}'")
    con.execute(f"SET s3_secret_access_key = '{server.secret_key}'")
    try:
        yield con
    finally:
        con.close()


ROWS = (
    "SELECT i AS id, i % 7 AS bucket, 'name-' || i || '-ü' AS name, i * 0.25 AS score FROM range(5000) t(i)"
)


def test_read_parquet_glob(con, s3, bucket: str, tmp_path: Path) -> None:
    want = con.execute(f"{ROWS} ORDER BY id").fetchall()
    for part in range(3):  # written locally, uploaded with boto3
        local = tmp_path / f"part-{part}.parquet"
        con.execute(f"COPY ({ROWS} WHERE i % 3 = {part}) TO '{local}' (FORMAT parquet)")
        s3.upload_file(str(local), bucket, f"tables/t/part-{part}.parquet")
    s3.put_object(Bucket=bucket, Key="tables/t/readme.txt", Body=b"not parquet")

    got = con.execute(
        f"SELECT * FROM read_parquet('s3://{bucket}/tables/t/*.parquet') ORDER BY id"
    ).fetchall()
    assert got == want
    files = con.execute(f"SELECT count(*) FROM glob('s3://{bucket}/tables/t/*.parquet')").fetchone()
    assert files == (3,)
    one = con.execute(f"SELECT count(*), min(id) FROM 's3://{bucket}/tables/t/part-1.parquet'").fetchone()
    assert one == (len(range(1, 5000, 3)), 1)


def test_copy_to_s3_and_read_back(con, s3, bucket: str) -> None:
    want = con.execute(f"{ROWS} ORDER BY id").fetchall()
    con.execute(f"COPY ({ROWS}) TO 's3://{bucket}/out/rows.parquet' (FORMAT parquet)")
    assert "out/rows.parquet" in list_keys(s3, bucket, "out/")
    got = con.execute(f"SELECT * FROM read_parquet('s3://{bucket}/out/rows.parquet') ORDER BY id").fetchall()
    assert got == want

    con.execute(
        f"COPY ({ROWS}) TO 's3://{bucket}/out/by_bucket' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)"
    )
    keys = [k for k in list_keys(s3, bucket, "out/by_bucket/") if k.endswith(".parquet")]
    assert {k.split("/")[2] for k in keys} == {f"bucket={b}" for b in range(7)}
    got = con.execute(
        f"SELECT id, bucket, name, score FROM read_parquet('s3://{bucket}/out/by_bucket/*/*.parquet', "
        "hive_partitioning = true) ORDER BY id"
    ).fetchall()
    assert got == want


def test_glob_past_one_listing_page(con, many_keys_bucket: str) -> None:
    count = con.execute(f"SELECT count(*) FROM glob('s3://{many_keys_bucket}/many/k-*')").fetchone()
    assert count == (len(MANY_TOP),)
    blobs = con.execute(
        f"SELECT filename, content FROM read_blob('s3://{many_keys_bucket}/many/sub*/x') ORDER BY filename"
    ).fetchall()
    want = [k for k in MANY_KEYS if "/sub" in k]
    assert blobs == [(f"s3://{many_keys_bucket}/{k}", k.encode()) for k in want]
