"""The pure parts of authorization: ACLs (canned, grant headers, JSON), public policies, POST
policies, and the bucket cache's local behaviour (loads, invalidation, races)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from pails.iam.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    AclError,
    Grant,
    acl_from_json,
    canned,
    from_headers,
    permits,
)
from pails.iam.cache import BucketCache, decode_access, encode_access, split_cache_url
from pails.iam.policy import parse_policy
from pails.iam.post_policy import MalformedPostPolicy, PolicyViolation, check_fields, parse_post_policy
from pails.iam.public import policy_is_public
from pails.meta.access import BucketAccess
from pails.meta.models import Bucket

# ------------------------------------------------------------------ ACLs


def test_canned_acls() -> None:
    assert canned("private", "o").grants == (Grant("CanonicalUser", "o", "FULL_CONTROL"),)
    assert Grant("Group", ALL_USERS, "WRITE") in canned("public-read-write", "o").grants
    assert canned("authenticated-read", "o").grants[1] == Grant("Group", AUTHENTICATED_USERS, "READ")
    assert canned("bucket-owner-full-control", "w", bucket_owner="b").grants[1] == Grant(
        "CanonicalUser", "b", "FULL_CONTROL"
    )
    assert len(canned("bucket-owner-read", "same", bucket_owner="same").grants) == 1
    assert canned("public-read", "o").is_public and not canned("private", "o").is_public
    with pytest.raises(AclError) as err:
        canned("world-writable", "o")
    assert err.value.code == "InvalidArgument"


def test_grant_headers() -> None:
    acl = from_headers(
        {"x-amz-grant-read": f'id="abc", uri="{ALL_USERS}"', "x-amz-grant-write-acp": "id=def"}, "owner"
    )
    assert acl is not None
    assert set(acl.grants) == {
        Grant("CanonicalUser", "abc", "READ"),
        Grant("Group", ALL_USERS, "READ"),
        Grant("CanonicalUser", "def", "WRITE_ACP"),
    }
    assert from_headers({}, "owner") is None
    for headers, code in [
        ({"x-amz-acl": "private", "x-amz-grant-read": "id=a"}, "InvalidRequest"),
        ({"x-amz-grant-read": 'emailAddress="a@b.c"'}, "UnresolvableGrantByEmailAddress"),
        ({"x-amz-grant-read": 'uri="http://example.com/group"'}, "InvalidArgument"),
        ({"x-amz-grant-read": "nonsense"}, "InvalidArgument"),
    ]:
        with pytest.raises(AclError) as err:
            from_headers(headers, "owner")
        assert err.value.code == code


def test_acl_json_round_trip_and_default() -> None:
    acl = canned("public-read", "o", "Owner Name")
    assert acl_from_json(acl.to_json(), "ignored") == acl
    assert acl_from_json("", "bucket-owner") == canned("private", "bucket-owner")
    assert acl.without_public_grants().grants == (Grant("CanonicalUser", "o", "FULL_CONTROL"),)


def test_acl_permissions() -> None:
    assert permits("READ", "s3:ListBucket", on_object=False)
    assert not permits("READ", "s3:GetObject", on_object=False)
    assert permits("READ", "s3:GetObjectVersion", on_object=True)
    assert permits("WRITE", "s3:DeleteObject", on_object=False)
    assert not permits("WRITE", "s3:PutObject", on_object=True)
    assert permits("FULL_CONTROL", "s3:PutObjectAcl", on_object=True)
    assert not permits("FULL_CONTROL", "s3:PutBucketPolicy", on_object=False)


# ------------------------------------------------------------------ public policies


def _policy(statement: dict[str, object]) -> object:
    return parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": [statement]}), require_principal=True
    )


@pytest.mark.parametrize(
    ("principal", "condition", "public"),
    [
        ("*", None, True),
        ({"AWS": "*"}, None, True),
        ({"AWS": "111122223333"}, None, False),
        ("*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, False),
        ("*", {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, True),
        ("*", {"StringEquals": {"aws:PrincipalAccount": "111122223333"}}, False),
        ("*", {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*"}}, True),
        ("*", {"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}, True),
        ("*", {"Bool": {"aws:SecureTransport": "true"}}, True),
    ],
)
def test_public_policies(principal: object, condition: object, public: bool) -> None:
    statement: dict[str, object] = {"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
                                    "Resource": "arn:aws:s3:::b/*"}  # fmt: skip
    if condition is not None:
        statement["Condition"] = condition
    assert policy_is_public(_policy(statement)) is public  # type: ignore[arg-type]


# ------------------------------------------------------------------ POST policies


def _encode(doc: dict[str, object]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_post_policy_conditions() -> None:
    policy = parse_post_policy(
        _encode(
            {
                "expiration": "2026-11-25T13:00:00.000Z",
                "conditions": [
                    {"bucket": "b"},
                    ["starts-with", "$key", "user/"],
                    ["eq", "$x-amz-meta-a", "1"],
                    ["starts-with", "$Content-Type", "image/"],
                    ["content-length-range", 1, 10],
                    {"x-amz-credential": "AK/20261125/us-east-1/s3/aws4_request"},
                ],
            }
        )
    )
    assert policy.length_range == (1, 10)
    fields = {"bucket": "b", "key": "user/x", "x-amz-meta-a": "1", "content-type": "image/png",
              "x-amz-credential": "AK/20261125/us-east-1/s3/aws4_request", "policy": "...",
              "x-amz-signature": "...", "x-ignore-me": "1"}  # fmt: skip
    check_fields(policy, fields, NOW)
    for change, message in [
        ({"key": "other/x"}, "Policy Condition failed"),
        ({"bucket": "c"}, "Policy Condition failed"),
        ({"content-type": "image/png,text/html"}, "Policy Condition failed"),
        ({"x-amz-meta-b": "2"}, "Extra input fields: x-amz-meta-b"),
    ]:
        with pytest.raises(PolicyViolation, match=message):
            check_fields(policy, {**fields, **change}, NOW)
    with pytest.raises(PolicyViolation, match="expired"):
        check_fields(policy, fields, NOW + timedelta(hours=2))


@pytest.mark.parametrize(
    "document",
    [
        "not base64!",
        base64.b64encode(b"[1, 2]").decode(),
        _encode({"conditions": []}),
        _encode({"expiration": "soon", "conditions": []}),
        _encode({"expiration": "2026-11-25T13:00:00Z", "conditions": [["between", "$key", "a"]]}),
        _encode({"expiration": "2026-11-25T13:00:00Z", "conditions": [["content-length-range", "a", 2]]}),
        _encode({"expiration": "2026-11-25T13:00:00Z", "conditions": [["eq", "key", "a"]]}),
    ],
)
def test_malformed_post_policies(document: str) -> None:
    with pytest.raises(MalformedPostPolicy):
        parse_post_policy(document)


# ------------------------------------------------------------------ cache (local)


def _access(name: str, policy: str | None = None) -> BucketAccess:
    return BucketAccess(Bucket(7, name, "owner", "us-east-1", 1.0), policy, None, None)


def test_cache_loads_once_and_reloads_after_invalidation() -> None:
    calls: list[str] = []
    state = {"policy": None}

    async def loader(name: str) -> BucketAccess | None:
        calls.append(name)
        return None if name == "missing" else _access(name, state["policy"])

    async def scenario() -> None:
        cache = BucketCache(loader, lambda a: a, ttl=3600)
        first = await cache.get("b")
        assert (await cache.get("b")) is first and calls == ["b"]
        assert await cache.get("missing") is None and await cache.get("missing") is None
        assert calls == ["b", "missing"]
        state["policy"] = "{}"
        await cache.invalidate("b")
        assert (await cache.get("b")).policy == "{}"
        assert calls == ["b", "missing", "b"]

    asyncio.run(scenario())


def test_a_load_that_races_an_invalidation_is_not_cached() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def loader(name: str) -> BucketAccess | None:
        calls.append(name)
        if len(calls) == 1:
            await release.wait()  # the first load is slow: a write lands meanwhile
        return _access(name, str(len(calls)))

    async def scenario() -> None:
        cache = BucketCache(loader, lambda a: a, ttl=3600)
        slow = asyncio.create_task(cache.get("b"))
        await asyncio.sleep(0)
        await cache.invalidate("b")
        release.set()
        assert (await slow).policy == "1"  # answered, but stale: not kept
        assert (await cache.get("b")).policy == "2"
        assert (await cache.get("b")).policy == "2" and len(calls) == 2

    asyncio.run(scenario())


def test_cache_encoding_and_urls() -> None:
    access = _access("b", '{"Version": "2012-10-17"}')
    assert decode_access(encode_access(access)) == access
    assert decode_access(encode_access(None)) is None
    assert split_cache_url("redis://h:6379/2?prefix=t1") == ("redis://h:6379/2", "t1")
    assert split_cache_url("redis://h:6379/0") == ("redis://h:6379/0", "pails")
    with pytest.raises(ValueError):
        split_cache_url("memcached://h:1")
