"""polars' cloud Parquet I/O (the Rust object_store crate underneath) against Pails."""

from __future__ import annotations

import io

import pytest
from tooltest import need


@pytest.fixture
def storage_options(server) -> dict[str, str]:
    return {
        "aws_access_key_id": server.access_key,
        "aws_secret_access_key": server.secret_key,
        "aws_region": server.region,
        "aws_endpoint_url": server.endpoint,
        "aws_allow_http": "true",
        "aws_virtual_hosted_style_request": "false",
    }


def _frame(pl, start: int, n: int):
    return pl.DataFrame(
        {
            "id": list(range(start, start + n)),
            "name": [f"n-{i}-ü🎉" for i in range(start, start + n)],
            "score": [i / 8 for i in range(start, start + n)],
        }
    )


def test_read_parquet_written_by_boto3(storage_options, s3, bucket: str) -> None:
    pl = need("polars")
    frames = [_frame(pl, 0, 1000), _frame(pl, 1000, 500)]
    for i, frame in enumerate(frames):
        buf = io.BytesIO()
        frame.write_parquet(buf)
        s3.put_object(Bucket=bucket, Key=f"pq/part-{i}.parquet", Body=buf.getvalue())

    one = pl.read_parquet(f"s3://{bucket}/pq/part-0.parquet", storage_options=storage_options)
    assert one.equals(frames[0])
    both = pl.read_parquet(f"s3://{bucket}/pq/*.parquet", storage_options=storage_options).sort("id")
    assert both.equals(pl.concat(frames))
    lazy = (
        pl.scan_parquet(f"s3://{bucket}/pq/*.parquet", storage_options=storage_options)
        .filter(pl.col("id") >= 1400)
        .select("id")
        .collect()
    )
    assert sorted(lazy["id"].to_list()) == list(range(1400, 1500))


def test_write_parquet_to_s3(storage_options, s3, bucket: str) -> None:
    pl = need("polars")
    frame = _frame(pl, 0, 20_000)
    frame.write_parquet(f"s3://{bucket}/out/frame.parquet", storage_options=storage_options)
    body = s3.get_object(Bucket=bucket, Key="out/frame.parquet")["Body"].read()
    assert pl.read_parquet(io.BytesIO(body)).equals(frame)
    assert pl.read_parquet(f"s3://{bucket}/out/frame.parquet", storage_options=storage_options).equals(frame)
