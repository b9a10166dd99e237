"""Pure parts of IAM identities: session tokens, the server key, ids, the query protocol, and the
AssumeRole / IAM access rules."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import jwt
import pytest

from pails.api.query_protocol import IAM_NS, error, parse_params, response
from pails.iam import ids, serverkey
from pails.iam.access import allowed, may_assume, parse_trust_policy
from pails.iam.credentials import Identity, IdentityKind
from pails.iam.iam_errors import IamError
from pails.iam.policy import MalformedPolicy, parse_policy
from pails.iam.sessions import Session, SessionKind, TokenExpired, TokenInvalid, decode, encode
from pails.iam.sts import parse_role_arn

KEYS = serverkey.ServerKeys.from_master("k" * 40)
OTHER_KEYS = serverkey.ServerKeys.from_master("o" * 40)
NOW = 1_800_000_000


def _session(**changes: object) -> Session:
    values: dict[str, object] = {
        "access_key": "ASIAEXAMPLEEXAMPLE01",
        "secret_key": "s3cr3t/with+chars",
        "account_id": "123456789012",
        "kind": SessionKind.ASSUMED_ROLE,
        "source_key": "AKIASOURCE0000000001",
        "issued_at": NOW,
        "expires_at": NOW + 900,
        "role_id": "AROAEXAMPLE",
        "role_session_name": "s1",
        "session_policy": '{"Statement":[]}',
    }
    values.update(changes)
    return Session(**values)  # type: ignore[arg-type]


def test_session_round_trip() -> None:
    session = _session()
    assert decode(encode(session, KEYS), KEYS, now=NOW + 1) == session
    plain = _session(
        kind=SessionKind.SESSION, role_id="", role_session_name="", session_policy="", user_id="AIDA1"
    )
    assert decode(encode(plain, KEYS), KEYS, now=NOW) == plain


def test_secret_is_not_readable_in_the_token() -> None:
    token = encode(_session(), KEYS)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "s3cr3t" not in json.dumps(claims)
    assert claims["akid"] == "ASIAEXAMPLEEXAMPLE01"


def test_expired_token() -> None:
    token = encode(_session(), KEYS)
    with pytest.raises(TokenExpired):
        decode(token, KEYS, now=NOW + 900)


def test_tampered_or_foreign_tokens_are_invalid() -> None:
    token = encode(_session(), KEYS)
    with pytest.raises(TokenInvalid):
        decode(token, OTHER_KEYS, now=NOW)
    head, _payload, sig = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["acct"] = "999999999999"
    forged = jwt.encode(claims, "guess" * 8, algorithm="HS256").split(".")[1]
    with pytest.raises(TokenInvalid):
        decode(f"{head}.{forged}.{sig}", KEYS, now=NOW)
    with pytest.raises(TokenInvalid):
        decode("not-a-token", KEYS, now=NOW)
    unsigned = (
        jwt.encode(claims, "", algorithm="none") if "none" in jwt.algorithms.get_default_algorithms() else "x"
    )
    with pytest.raises(TokenInvalid):
        decode(unsigned, KEYS, now=NOW)


def test_expiry_is_checked_only_after_the_signature() -> None:
    """A forged expired token is invalid, not expired (no oracle on foreign tokens)."""
    token = encode(_session(), OTHER_KEYS)
    with pytest.raises(TokenInvalid):
        decode(token, KEYS, now=NOW + 10_000)


def test_secret_box_binds_context_and_key() -> None:
    sealed = KEYS.secrets.seal("secret", "AKIA1")
    assert b"secret" not in sealed
    assert KEYS.secrets.open(sealed, "AKIA1") == "secret"
    with pytest.raises(serverkey.ServerKeyError):
        KEYS.secrets.open(sealed, "AKIA2")
    with pytest.raises(serverkey.ServerKeyError):
        OTHER_KEYS.secrets.open(sealed, "AKIA1")
    assert KEYS.secrets.seal("secret", "AKIA1") != sealed  # random nonce


def test_server_key_file(tmp_path) -> None:
    first = serverkey.load_or_create(tmp_path, None)
    assert (tmp_path / serverkey.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert serverkey.load_or_create(tmp_path, None) == first
    assert serverkey.load_or_create(tmp_path, "c" * 32) == "c" * 32
    with pytest.raises(serverkey.ServerKeyError):
        serverkey.load_or_create(tmp_path, "short")


def test_ids() -> None:
    account = ids.account_id()
    assert len(account) == 12 and account.isdigit() and account[0] != "0"
    assert len(ids.canonical_id()) == 64
    assert ids.unique_id(ids.USER_PREFIX).startswith("AIDA") and len(ids.unique_id("AIDA")) == 21
    assert ids.access_key_id().startswith("AKIA") and len(ids.access_key_id()) == 20
    assert ids.access_key_id(temporary=True).startswith("ASIA")
    assert len(ids.secret_access_key()) == 40
    assert (
        ids.valid_name("alice+dev@example.com") and not ids.valid_name("a b") and not ids.valid_name("x" * 65)
    )
    assert (
        ids.valid_path("/")
        and ids.valid_path("/a/b/")
        and not ids.valid_path("a/")
        and not ids.valid_path("/a")
    )


def test_parse_role_arn() -> None:
    assert parse_role_arn("arn:aws:iam::123456789012:role/path/to/R") == ("123456789012", "R")
    for bad in (
        "arn:aws:iam::12:role/R",
        "arn:aws:iam::123456789012:user/R",
        "nope",
        "arn:aws:iam::123456789012:role/",
    ):
        with pytest.raises(IamError):
            parse_role_arn(bad)


def test_query_params_and_documents() -> None:
    params = parse_params(
        b"Action=CreateUser&Version=2010-05-08&UserName=a%2Bb&Path=%2F", "Extra=1&X-Amz-Date=x"
    )
    assert params == {
        "Action": "CreateUser",
        "Version": "2010-05-08",
        "UserName": "a+b",
        "Path": "/",
        "Extra": "1",
    }
    body = response("CreateUser", IAM_NS, "<User><UserName>a&amp;b</UserName></User>", "REQ1")
    root = ET.fromstring(body)
    ns = {"i": IAM_NS}
    assert root.tag == f"{{{IAM_NS}}}CreateUserResponse"
    assert root.find("i:CreateUserResult/i:User/i:UserName", ns).text == "a&b"  # type: ignore[union-attr]
    assert root.find("i:ResponseMetadata/i:RequestId", ns).text == "REQ1"  # type: ignore[union-attr]
    err = ET.fromstring(error(IamError("NoSuchEntity", "no <user>"), IAM_NS, "REQ2"))
    assert err.find("i:Error/i:Code", ns).text == "NoSuchEntity"  # type: ignore[union-attr]
    assert err.find("i:Error/i:Type", ns).text == "Sender"  # type: ignore[union-attr]
    assert err.find("i:Error/i:Message", ns).text == "no <user>"  # type: ignore[union-attr]
    assert err.find("i:RequestId", ns).text == "REQ2"  # type: ignore[union-attr]
    assert IamError("NoSuchEntity", "x").status == 404 and IamError("EntityAlreadyExists", "x").status == 409


def _user(account: str = "111111111111", *documents: str) -> Identity:
    return Identity(
        access_key="AKIA",
        account_id=account,
        canonical_id="c" * 64,
        display_name="acct",
        kind=IdentityKind.USER,
        arn=f"arn:aws:iam::{account}:user/alice",
        user_name="alice",
        user_id="AIDAALICE",
        policies=tuple(parse_policy(d, forbid_principal=True) for d in documents),
    )


def _root(account: str = "111111111111") -> Identity:
    return Identity("AKIAROOT", account, "d" * 64, "acct", is_root=True, arn=f"arn:aws:iam::{account}:root")


ROLE = "arn:aws:iam::111111111111:role/R"
ALLOW_ASSUME = json.dumps({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE}]})


def _trust(principal: object) -> object:
    return parse_trust_policy(
        json.dumps(
            {"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]}
        )
    )


def test_trust_policy_parsing() -> None:
    assert _trust("111111111111").statements[0].resources == ("*",)
    with pytest.raises(MalformedPolicy):
        parse_trust_policy(json.dumps({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}))
    with pytest.raises(MalformedPolicy):
        parse_trust_policy("{")


@pytest.mark.parametrize(
    ("identity", "principal", "account", "expected"),
    [
        (_root(), "111111111111", "111111111111", True),  # root: the account's trust suffices
        (_user(), "111111111111", "111111111111", False),  # a user also needs an identity Allow
        (_user("111111111111", ALLOW_ASSUME), "111111111111", "111111111111", True),
        (_user(), "arn:aws:iam::111111111111:user/alice", "111111111111", True),  # named directly
        (_root("222222222222"), "222222222222", "111111111111", True),  # cross-account root
        (_user("222222222222"), "222222222222", "111111111111", False),
        (_user("222222222222", ALLOW_ASSUME), "222222222222", "111111111111", True),
        (_user("222222222222"), "arn:aws:iam::222222222222:user/alice", "111111111111", False),
        (_root("333333333333"), "222222222222", "111111111111", False),  # not trusted at all
        (_user("111111111111", ALLOW_ASSUME), "arn:aws:iam::111111111111:user/bob", "111111111111", False),
    ],
)
def test_may_assume(identity: Identity, principal: str, account: str, expected: bool) -> None:
    assert may_assume(identity, _trust(principal), ROLE, account, {}) is expected  # type: ignore[arg-type]


def test_deny_in_identity_policy_blocks_assume_role() -> None:
    deny = json.dumps({"Statement": [{"Effect": "Deny", "Action": "sts:*", "Resource": "*"}]})
    user = _user("111111111111", ALLOW_ASSUME, deny)
    assert not may_assume(user, _trust("arn:aws:iam::111111111111:user/alice"), ROLE, "111111111111", {})  # type: ignore[arg-type]


def test_iam_access() -> None:
    arn = "arn:aws:iam::111111111111:user/bob"
    assert allowed(_root(), "iam:CreateUser", arn, {})
    assert not allowed(_user(), "iam:CreateUser", arn, {})
    scoped = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iam:*AccessKey*",
                    "Resource": "arn:aws:iam::*:user/${aws:username}",
                }
            ],
        }
    )
    user = _user("111111111111", scoped)
    assert allowed(user, "iam:CreateAccessKey", "arn:aws:iam::111111111111:user/alice", {})
    assert not allowed(user, "iam:CreateAccessKey", arn, {})
    assert not allowed(user, "iam:CreateUser", "arn:aws:iam::111111111111:user/alice", {})


def test_session_policy_narrows() -> None:
    base = _user(
        "111111111111", json.dumps({"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]})
    )
    narrow = parse_policy(
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "iam:Get*", "Resource": "*"}]})
    )
    from dataclasses import replace

    session = replace(base, kind=IdentityKind.ASSUMED_ROLE, session_policy=narrow)
    assert allowed(session, "iam:GetUser", "arn:aws:iam::111111111111:user/x", {})
    assert not allowed(session, "iam:DeleteUser", "arn:aws:iam::111111111111:user/x", {})


def test_tokens_use_the_clock_given() -> None:
    token = encode(_session(issued_at=int(time.time()), expires_at=int(time.time()) + 900), KEYS)
    assert decode(token, KEYS, now=time.time()).access_key == "ASIAEXAMPLEEXAMPLE01"
