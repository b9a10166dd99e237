"""ListObjects (v1) and ListObjectsV2: prefix, delimiter, paging, markers, ordering."""

from __future__ import annotations

import pytest
from s3util import parse_error, strip_ns, xml_root

KEYS = [
    "a/1.txt",
    "a/2.txt",
    "a/b/3.txt",
    "a/b/c/4.txt",
    "b/1.txt",
    "b/2.txt",
    "c.txt",
    "d/",
    "e",
    "e/f",
    "z~tail",
]


@pytest.fixture
def populated(s3, bucket):
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_v2_lists_all_sorted_with_sizes(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated)
    assert [o["Key"] for o in resp["Contents"]] == sorted(KEYS)
    assert resp["KeyCount"] == len(KEYS)
    assert resp["IsTruncated"] is False
    assert resp["Name"] == populated
    assert resp["MaxKeys"] == 1000
    for o in resp["Contents"]:
        assert o["Size"] == len(o["Key"].encode())
        assert o["ETag"].startswith('"') and len(o["ETag"]) == 34
        assert o.get("StorageClass") == "STANDARD"


def test_v2_prefix(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, Prefix="a/b/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/b/3.txt", "a/b/c/4.txt"]
    assert resp["Prefix"] == "a/b/"
    assert resp["KeyCount"] == 2
    resp = s3.list_objects_v2(Bucket=populated, Prefix="nothing-here")
    assert resp.get("Contents", []) == []
    assert resp["KeyCount"] == 0


def test_v2_delimiter_root(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["c.txt", "e", "z~tail"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/", "b/", "d/", "e/"]
    assert resp["KeyCount"] == 7  # keys + common prefixes
    assert resp["Delimiter"] == "/"


def test_v2_delimiter_with_prefix(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, Delimiter="/", Prefix="a/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/1.txt", "a/2.txt"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/b/"]
    resp = s3.list_objects_v2(Bucket=populated, Delimiter="/", Prefix="d/")
    assert [o["Key"] for o in resp["Contents"]] == ["d/"]
    assert resp.get("CommonPrefixes", []) == []


def test_v2_non_slash_delimiter(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, Delimiter=".txt")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == [
        "a/1.txt",
        "a/2.txt",
        "a/b/3.txt",
        "a/b/c/4.txt",
        "b/1.txt",
        "b/2.txt",
        "c.txt",
    ]
    assert [o["Key"] for o in resp["Contents"]] == ["d/", "e", "e/f", "z~tail"]


def test_v2_pagination_max_keys(s3, populated):
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs = {"Bucket": populated, "MaxKeys": 3}
        if token:
            kwargs["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kwargs)
        pages += 1
        batch = [o["Key"] for o in resp.get("Contents", [])]
        assert resp["KeyCount"] == len(batch)
        assert resp["MaxKeys"] == 3
        seen += batch
        if not resp["IsTruncated"]:
            assert "NextContinuationToken" not in resp
            break
        assert len(batch) == 3
        token = resp["NextContinuationToken"]
        assert token
        if kwargs.get("ContinuationToken"):
            assert resp["ContinuationToken"] == kwargs["ContinuationToken"]
        assert pages < 10
    assert seen == sorted(KEYS)
    assert pages == 4


def test_v2_pagination_with_delimiter_counts_prefixes(s3, populated):
    seen_keys: list[str] = []
    seen_prefixes: list[str] = []
    token = None
    for _ in range(10):
        kwargs = {"Bucket": populated, "MaxKeys": 2, "Delimiter": "/"}
        if token:
            kwargs["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kwargs)
        keys = [o["Key"] for o in resp.get("Contents", [])]
        prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        assert len(keys) + len(prefixes) <= 2
        assert resp["KeyCount"] == len(keys) + len(prefixes)
        seen_keys += keys
        seen_prefixes += prefixes
        if not resp["IsTruncated"]:
            break
        token = resp["NextContinuationToken"]
    assert seen_keys == ["c.txt", "e", "z~tail"]
    assert seen_prefixes == ["a/", "b/", "d/", "e/"]


def test_v2_start_after(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, StartAfter="b/1.txt")
    assert [o["Key"] for o in resp["Contents"]] == [k for k in sorted(KEYS) if k > "b/1.txt"]
    assert resp["StartAfter"] == "b/1.txt"
    resp = s3.list_objects_v2(Bucket=populated, StartAfter="b/0-not-a-key")
    assert resp["Contents"][0]["Key"] == "b/1.txt"
    resp = s3.list_objects_v2(Bucket=populated, StartAfter="~~~~")
    assert resp.get("Contents", []) == []
    assert resp["KeyCount"] == 0


def test_v2_max_keys_zero(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, MaxKeys=0)
    assert resp.get("Contents", []) == []
    assert resp["KeyCount"] == 0


def test_v2_fetch_owner(s3, populated):
    with_owner = s3.list_objects_v2(Bucket=populated, FetchOwner=True, MaxKeys=1)
    assert with_owner["Contents"][0].get("Owner", {}).get("ID")
    without = s3.list_objects_v2(Bucket=populated, MaxKeys=1)
    assert "Owner" not in without["Contents"][0]


def test_v1_lists_all(s3, populated):
    resp = s3.list_objects(Bucket=populated)
    assert [o["Key"] for o in resp["Contents"]] == sorted(KEYS)
    assert resp["IsTruncated"] is False
    assert resp.get("Marker", "") == ""


def test_v1_marker_paging(s3, populated):
    seen: list[str] = []
    marker = ""
    for _ in range(10):
        resp = s3.list_objects(Bucket=populated, MaxKeys=4, Marker=marker)
        batch = [o["Key"] for o in resp.get("Contents", [])]
        assert resp.get("Marker", "") == marker
        seen += batch
        if not resp["IsTruncated"]:
            break
        assert len(batch) == 4
        if "NextMarker" in resp:  # only required with a delimiter; if sent it must be the last key
            assert resp["NextMarker"] == batch[-1]
        marker = batch[-1]
    assert seen == sorted(KEYS)


def test_v1_next_marker_with_delimiter(s3, populated):
    resp = s3.list_objects(Bucket=populated, MaxKeys=2, Delimiter="/")
    assert resp["IsTruncated"] is True
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/", "b/"]
    assert resp.get("Contents", []) == []
    assert resp["NextMarker"] == "b/"
    resp2 = s3.list_objects(Bucket=populated, MaxKeys=2, Delimiter="/", Marker=resp["NextMarker"])
    assert [o["Key"] for o in resp2.get("Contents", [])] == ["c.txt"]
    assert [p["Prefix"] for p in resp2["CommonPrefixes"]] == ["d/"]
    assert resp2["IsTruncated"] is True
    assert resp2["NextMarker"] == "d/"


def test_v1_prefix_delimiter(s3, populated):
    resp = s3.list_objects(Bucket=populated, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["a/1.txt", "a/2.txt"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/b/"]
    assert resp["Prefix"] == "a/"


def test_binary_utf8_ordering(s3, bucket):
    keys = ["B", "a", "é", "z", "~", "Z", "0", "a/", "a-", "日本", "😀", "\u00ff", "\u0100"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == expected
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == expected


def test_raw_v2_xml_shape(raw, populated):
    r = raw.request("GET", f"/{populated}", query=[("list-type", "2"), ("max-keys", "2"), ("prefix", "a/")])
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") in ("application/xml", "application/xml; charset=utf-8", "text/xml")
    root = strip_ns(xml_root(r.body))
    assert root.tag == "ListBucketResult"
    assert root.findtext("KeyCount") == "2"
    assert root.findtext("MaxKeys") == "2"
    assert root.findtext("IsTruncated") == "true"
    assert root.findtext("NextContinuationToken")
    assert [c.findtext("Key") for c in root.findall("Contents")] == ["a/1.txt", "a/2.txt"]


def test_listing_overwritten_and_deleted_keys(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k1", Body=b"1")
    s3.put_object(Bucket=bucket, Key="k1", Body=b"22")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"3")
    s3.delete_object(Bucket=bucket, Key="k2")
    resp = s3.list_objects_v2(Bucket=bucket)
    assert [(o["Key"], o["Size"]) for o in resp["Contents"]] == [("k1", 2)]


def test_default_page_is_1000_and_paginator_gets_all(server, bucket):
    from concurrent.futures import ThreadPoolExecutor

    client = server.client(max_pool_connections=16)
    keys = [f"k/{i:05d}" for i in range(1503)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b""), keys))
    first = client.list_objects_v2(Bucket=bucket)
    assert first["KeyCount"] == 1000
    assert first["IsTruncated"] is True
    assert first["Contents"][-1]["Key"] == keys[999]
    v1 = client.list_objects(Bucket=bucket)
    assert len(v1["Contents"]) == 1000 and v1["IsTruncated"] is True
    big = client.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert big["KeyCount"] == 1000 and big["IsTruncated"] is True
    got = [
        o["Key"]
        for p in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in p["Contents"]
    ]
    assert got == keys
    got1 = [
        o["Key"] for p in client.get_paginator("list_objects").paginate(Bucket=bucket) for o in p["Contents"]
    ]
    assert got1 == keys


@pytest.mark.parametrize(
    "query",
    [
        [("list-type", "2"), ("continuation-token", "not-a-real-token!!")],
        [("list-type", "2"), ("max-keys", "-1")],
        [("list-type", "2"), ("max-keys", "ten")],
        [("max-keys", "-5")],
    ],
    ids=["bad-token", "negative-max-keys", "non-numeric-max-keys", "v1-negative-max-keys"],
)
def test_invalid_list_arguments(raw, bucket, query):
    r = raw.request("GET", f"/{bucket}", query=query)
    assert r.status == 400, r.describe()
    assert parse_error(r.body)["Code"] == "InvalidArgument"


def test_list_raw_without_encoding_escapes_xml(raw, s3, bucket):
    key = "a&b<c>\"d'e"
    s3.put_object(Bucket=bucket, Key=key, Body=b"")
    r = raw.request("GET", f"/{bucket}", query=[("list-type", "2")])
    assert r.status == 200, r.describe()
    root = strip_ns(xml_root(r.body))
    assert [c.findtext("Key") for c in root.findall("Contents")] == [key]
    r = raw.request("GET", f"/{bucket}", query=[("list-type", "2"), ("encoding-type", "url")])
    root = strip_ns(xml_root(r.body))
    assert root.findtext("EncodingType") == "url"
    from urllib.parse import unquote_plus

    assert [unquote_plus(c.findtext("Key") or "") for c in root.findall("Contents")] == [key]


def test_prefix_without_trailing_delimiter(s3, populated):
    resp = s3.list_objects_v2(Bucket=populated, Prefix="a", Delimiter="/")
    assert resp.get("Contents", []) == []
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["a/"]
    resp = s3.list_objects_v2(Bucket=populated, Prefix="e", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["e"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["e/"]


def test_continuation_token_wins_over_start_after(s3, populated):
    first = s3.list_objects_v2(Bucket=populated, MaxKeys=2, StartAfter="a/2.txt")
    assert [o["Key"] for o in first["Contents"]] == ["a/b/3.txt", "a/b/c/4.txt"]
    nxt = s3.list_objects_v2(
        Bucket=populated, MaxKeys=2, StartAfter="a/2.txt", ContinuationToken=first["NextContinuationToken"]
    )
    assert [o["Key"] for o in nxt["Contents"]] == ["b/1.txt", "b/2.txt"]
