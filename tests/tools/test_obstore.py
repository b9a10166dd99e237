"""obstore (Python bindings of the Rust object_store crate) against Pails."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from tooltest import MANY_KEYS, MANY_PREFIXES, MANY_TOP, MIB, content, list_keys, need


def _store(server, bucket: str):
    obstore_store = need("obstore.store", "obstore")
    return obstore_store.S3Store(
        bucket,
        endpoint=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=server.region,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "60s", "connect_timeout": "5s"},
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=10)},
    )


@pytest.fixture
def store(server, bucket: str):
    return _store(server, bucket)


def test_put_get_list_head_delete(store, s3, bucket: str) -> None:
    obs = need("obstore")
    objects = {
        "a.txt": b"alpha",
        "dir/b.bin": content("obstore-b", 300_000),
        "dir/sub/c": b"",
        "dir/ünï 🎉.txt": b"unicode",
    }
    for key, data in objects.items():
        obs.put(store, key, data)
    assert list_keys(s3, bucket) == {k: len(v) for k, v in objects.items()}

    for key, data in objects.items():
        assert obs.get(store, key).bytes().to_bytes() == data
    assert obs.get_range(store, "dir/b.bin", start=100, end=200).to_bytes() == objects["dir/b.bin"][100:200]
    ranges = obs.get_ranges(store, "dir/b.bin", starts=[0, 1000], ends=[10, 1010])
    assert [r.to_bytes() for r in ranges] == [objects["dir/b.bin"][0:10], objects["dir/b.bin"][1000:1010]]

    listed = {m["path"]: m["size"] for batch in obs.list(store) for m in batch}
    assert listed == {k: len(v) for k, v in objects.items()}
    under = sorted(m["path"] for m in obs.list(store, prefix="dir/sub").collect())
    assert under == ["dir/sub/c"]
    top = obs.list_with_delimiter(store)
    assert top["common_prefixes"] == ["dir"]
    assert [m["path"] for m in top["objects"]] == ["a.txt"]

    head = obs.head(store, "dir/b.bin")
    assert head["size"] == 300_000
    assert head["e_tag"].strip('"') == hashlib.md5(objects["dir/b.bin"]).hexdigest()

    obs.copy(store, "a.txt", "copied.txt")
    assert obs.get(store, "copied.txt").bytes().to_bytes() == b"alpha"
    obs.rename(store, "copied.txt", "renamed.txt")
    assert obs.get(store, "renamed.txt").bytes().to_bytes() == b"alpha"

    for key in [*objects, "renamed.txt"]:
        obs.delete(store, key)
    assert list_keys(s3, bucket) == {}
    with pytest.raises(FileNotFoundError):  # obstore's NotFoundError is raised as the builtin
        obs.get(store, "a.txt")


def test_conditional_put(store) -> None:
    obs = need("obstore")
    exceptions = need("obstore.exceptions", "obstore")
    first = obs.put(store, "once", b"first", mode="create")  # If-None-Match: *
    with pytest.raises(exceptions.AlreadyExistsError):
        obs.put(store, "once", b"second", mode="create")
    assert obs.get(store, "once").bytes().to_bytes() == b"first"

    obs.put(store, "once", b"updated", mode={"e_tag": first["e_tag"]})  # If-Match
    with pytest.raises(exceptions.PreconditionError):
        obs.put(store, "once", b"stale", mode={"e_tag": first["e_tag"]})
    assert obs.get(store, "once").bytes().to_bytes() == b"updated"


def test_multipart_put(store, s3, bucket: str) -> None:
    obs = need("obstore")
    data = content("obstore-multipart", 12 * MIB + 3)
    obs.put(store, "big.bin", data, use_multipart=True, chunk_size=5 * MIB)
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ETag"].strip('"').endswith("-3")
    assert obs.get(store, "big.bin").bytes().to_bytes() == data

    with obs.open_writer(store, "streamed.bin", buffer_size=5 * MIB) as writer:
        for i in range(0, len(data), MIB):
            writer.write(data[i : i + MIB])
    assert obs.get(store, "streamed.bin").bytes().to_bytes() == data


def test_listing_past_one_page(server, many_keys_bucket: str) -> None:
    obs = need("obstore")
    store = _store(server, many_keys_bucket)
    every = [m["path"] for batch in obs.list(store, chunk_size=500) for m in batch]
    assert every == sorted(MANY_KEYS)
    offset = [m["path"] for m in obs.list(store, offset="many/k-00999").collect()]  # start-after
    assert offset == sorted(k for k in MANY_KEYS if k > "many/k-00999")
    top = obs.list_with_delimiter(store, prefix="many")
    assert [m["path"] for m in top["objects"]] == sorted(MANY_TOP)
    assert top["common_prefixes"] == [p.rstrip("/") for p in MANY_PREFIXES]
