"""The policy language: a conformance matrix (tests/unit/policy_cases/*.json), the malformed-document
table, and properties of evaluation (hypothesis)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pails.iam.conditions import glob_match, tokenize
from pails.iam.policy import (
    Decision,
    MalformedPolicy,
    Policy,
    PolicyKind,
    RequestContext,
    RequestPrincipal,
    evaluate,
    evaluate_cross_account,
    identity_plan,
    parse_policy,
)

CASES_DIR = Path(__file__).parent / "policy_cases"
DEFAULT_PRINCIPAL = "arn:aws:iam::111122223333:user/alice"
DEFAULT_ACTION = "s3:GetObject"
DEFAULT_RESOURCE = "arn:aws:s3:::bucket/key"


def _load(kind: str) -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        if (path.name == "malformed.json") != (kind == "malformed"):
            continue
        for case in data["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


def _principal(spec: Any) -> RequestPrincipal:
    if spec is None:
        return RequestPrincipal.from_arn(DEFAULT_PRINCIPAL)
    if spec == "anonymous":
        return RequestPrincipal.anonymous()
    if isinstance(spec, str) and spec.startswith("root:"):
        return RequestPrincipal.root(spec.removeprefix("root:"))
    if isinstance(spec, str):
        return RequestPrincipal.from_arn(spec)
    if "arn" in spec:
        return RequestPrincipal.from_arn(spec["arn"], canonical_user=spec.get("canonical_user"))
    return RequestPrincipal(canonical_user=spec.get("canonical_user"), service=spec.get("service"))


def _policies(case: dict[str, Any]) -> list[tuple[Policy, PolicyKind]]:
    version = case.get("version", "2012-10-17")
    out: list[tuple[Policy, PolicyKind]] = []
    for entry in case.get("policies", []):
        kind = PolicyKind(entry["kind"])
        out.append(
            (parse_policy(json.dumps(entry["document"]), require_principal=kind is PolicyKind.RESOURCE), kind)
        )
    identity = list(case.get("identity", []))
    if "condition" in case:
        identity.append(
            {"Effect": "Allow", "Action": DEFAULT_ACTION, "Resource": "*", "Condition": case["condition"]}
        )
    if identity:
        doc = {"Version": version, "Statement": identity}
        out.append(
            (
                parse_policy(json.dumps(doc), forbid_principal=not case.get("identity_principal")),
                PolicyKind.IDENTITY,
            )
        )
    if "resource" in case:
        doc = {"Version": version, "Statement": case["resource"]}
        out.append((parse_policy(json.dumps(doc), require_principal=True), PolicyKind.RESOURCE))
    return out


def _context(case: dict[str, Any]) -> RequestContext:
    return RequestContext(
        principal=_principal(case.get("principal")),
        action=case.get("action", DEFAULT_ACTION),
        resource=case.get("resource_arn", DEFAULT_RESOURCE),
        keys=case.get("keys", {}),
    )


@pytest.mark.parametrize("case", _load("conformance"))
def test_conformance(case: dict[str, Any]) -> None:
    policies = _policies(case)
    ctx = _context(case)
    decide = evaluate_cross_account if case.get("cross_account") else evaluate
    assert decide(policies, ctx) is Decision[case["expect"]]
    # Statement and policy order never matters.
    assert decide(list(reversed(policies)), ctx) is Decision[case["expect"]]


_IDENTITY_ONLY = [
    case
    for case in _load("conformance")
    if not case.values[0].get("cross_account")
    and all(kind is PolicyKind.IDENTITY for _, kind in _policies(case.values[0]))
    and _policies(case.values[0])
]


@pytest.mark.parametrize("case", _IDENTITY_ONLY)
def test_identity_plan_agrees_with_evaluate(case: dict[str, Any]) -> None:
    """The shortcut the authorizer takes for identity policies without conditions or variables."""
    policies = _policies(case)
    ctx = _context(case)
    plan = identity_plan([policy for policy, _ in policies], ctx.action)
    if plan is not None:
        assert plan.decide(ctx.resource) is evaluate(policies, ctx)


def test_identity_plan_covers_plain_statements_only() -> None:
    plain = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/x?"]},
                    {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/secret/*"},
                    {"Effect": "Deny", "Action": "s3:PutObject", "NotResource": "arn:aws:s3:::b/*"},
                    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::${aws:username}"},
                    {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "*",
                     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
                ],
            }
        ),
        forbid_principal=True,
    )  # fmt: skip
    plan = identity_plan([plain], "s3:GetObject")
    assert plan is not None
    assert plan.decide("arn:aws:s3:::b/k") is Decision.ALLOW
    assert plan.decide("arn:aws:s3:::c/xy") is Decision.ALLOW
    assert plan.decide("arn:aws:s3:::c/xyz") is Decision.IMPLICIT_DENY
    assert plan.decide("arn:aws:s3:::b/secret/k") is Decision.EXPLICIT_DENY
    for action in ("s3:PutObject", "s3:ListBucket", "s3:DeleteObject"):
        assert identity_plan([plain], action) is None
    for resource in ("arn:aws:s3:::b/k", "arn:aws:s3:::c/xy", "arn:aws:s3:::b/secret/k", "arn:aws:s3:::d"):
        ctx = RequestContext(RequestPrincipal.from_arn(DEFAULT_PRINCIPAL), "s3:GetObject", resource)
        assert plan.decide(resource) is evaluate([(plain, PolicyKind.IDENTITY)], ctx)


@pytest.mark.parametrize("case", _load("malformed"))
def test_malformed(case: dict[str, Any]) -> None:
    if "text_hex" in case:
        text: str | bytes = bytes.fromhex(case["text_hex"])
    elif "text" in case:
        text = case["text"]
    else:
        text = json.dumps(case["policy"])
    with pytest.raises(MalformedPolicy) as info:
        parse_policy(
            text,
            require_principal=case.get("require_principal", False),
            forbid_principal=case.get("forbid_principal", False),
            max_bytes=case.get("max_bytes"),
        )
    assert case["error"] in info.value.message
    assert str(info.value) == info.value.message


def test_conformance_matrix_is_broad() -> None:
    text = "".join(p.read_text() for p in CASES_DIR.glob("*.json"))
    for needle in [
        "NotAction",
        "NotResource",
        "NotPrincipal",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericGreaterThanEquals",
        "DateNotEquals",
        "NotIpAddress",
        "ArnNotLike",
        "ArnNotEquals",
        "Null",
        "IfExists",
        "ForAllValues:",
        "ForAnyValue:",
        "${*}",
        "${?}",
        "${$}",
        "2001:db8",
    ]:
        assert needle in text, needle


def test_parse_accepts_the_aws_forms() -> None:
    policy = parse_policy(
        b'{"Version":"2012-10-17","Id":"p1","Statement":{"Sid":"Public","Effect":"Allow","Principal":"*",'
        b'"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*",'
        b'"Condition":{"NumericLessThan":{"s3:max-keys":10},"Bool":{"aws:SecureTransport":true}}}}',
        require_principal=True,
    )
    (statement,) = policy.statements
    assert policy.id == "p1"
    assert statement.sid == "Public"
    assert statement.actions == ("s3:GetObject",)
    assert [(c.operator, c.key, c.values) for c in statement.conditions] == [
        ("NumericLessThan", "s3:max-keys", ("10",)),
        ("Bool", "aws:SecureTransport", ("true",)),
    ]
    assert parse_policy(policy.dumps(), require_principal=True) == policy


def test_missing_version_means_no_variables() -> None:
    policy = parse_policy(
        '{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}"}}'
    )
    assert policy.version is None
    ctx = RequestContext(RequestPrincipal.from_arn(DEFAULT_PRINCIPAL), "s3:GetObject", "arn:aws:s3:::b/alice")
    assert evaluate([(policy, PolicyKind.IDENTITY)], ctx) is Decision.IMPLICIT_DENY


def test_request_context_derives_principal_keys() -> None:
    ctx = RequestContext(
        RequestPrincipal.from_arn("arn:aws:iam::111122223333:user/dev/alice"), "s3:GetObject", "*"
    )
    assert ctx.values("aws:username") == ("alice",)
    assert ctx.values("AWS:PrincipalArn") == ("arn:aws:iam::111122223333:user/dev/alice",)
    assert ctx.values("aws:principalaccount") == ("111122223333",)
    anonymous = RequestContext(
        RequestPrincipal.anonymous(), "s3:GetObject", "*", {"aws:SourceIp": "10.0.0.1"}
    )
    assert anonymous.values("aws:username") is None
    assert anonymous.values("aws:sourceip") == ("10.0.0.1",)
    assert RequestPrincipal.root("111122223333").is_root
    assert not RequestPrincipal.from_arn(DEFAULT_PRINCIPAL).is_root


def test_tokenize_escapes_and_defaults() -> None:
    assert tokenize("a${*}b", True) == (("lit", "a*b", None),)
    assert tokenize("${aws:username, 'it''s'}", True) == (("var", "aws:username", "it's"),)
    assert tokenize("${unterminated", True)[0] == ("lit", "${unterminated", None)
    assert glob_match("s3:List*", "S3:LISTBUCKET", ignore_case=True)


# --------------------------------------------------------------------------- properties

ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"]
ACTION_PATTERNS = [*ACTIONS, "s3:*", "*", "s3:Get*", "s3:?utObject", "iam:*"]
RESOURCES = [
    "arn:aws:s3:::bucket",
    "arn:aws:s3:::bucket/a/b",
    "arn:aws:s3:::other/x",
    "arn:aws:s3:::bucket/home/alice/f",
]
RESOURCE_PATTERNS = [
    *RESOURCES,
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::*/x",
    "arn:aws:s3:::bucket/home/${aws:username}/*",
]
PRINCIPALS = [
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:user/bob",
    "arn:aws:iam::444455556666:user/carol",
    "arn:aws:iam::111122223333:root",
    "anonymous",
]
PRINCIPAL_SPECS: list[Any] = [
    "*",
    {"AWS": "*"},
    {"AWS": "111122223333"},
    {"AWS": ["arn:aws:iam::111122223333:user/alice"]},
    {"AWS": ["arn:aws:iam::444455556666:user/carol", "arn:aws:iam::444455556666:root"]},
]
CONDITIONS: list[Any] = [
    {"Bool": {"aws:SecureTransport": "true"}},
    {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}},
    {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"StringLike": {"s3:prefix": "home/*"}},
    {"StringNotEqualsIfExists": {"s3:x-amz-acl": "public-read"}},
    {"NumericLessThanEquals": {"s3:max-keys": 100}},
    {"Null": {"s3:prefix": "true"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
]
KEY_SETS: list[dict[str, list[str]]] = [
    {},
    {"aws:SecureTransport": ["true"], "aws:SourceIp": ["10.1.2.3"]},
    {"aws:SecureTransport": ["false"], "aws:SourceIp": ["2001:db8::5"], "s3:prefix": ["home/x"]},
    {"s3:x-amz-acl": ["public-read"], "s3:max-keys": ["1000"], "aws:TagKeys": ["a", "c"]},
]


def _one_or_list(draw: st.DrawFn, pool: list[str]) -> Any:
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    return values[0] if len(values) == 1 and draw(st.booleans()) else values


@st.composite
def statements(draw: st.DrawFn, resource_policy: bool, effect: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    if draw(st.booleans()):
        out["Sid"] = "S" + str(draw(st.integers(0, 10**6)))
    if resource_policy:
        out["NotPrincipal" if draw(st.integers(0, 5)) == 0 else "Principal"] = draw(
            st.sampled_from(PRINCIPAL_SPECS)
        )
    out["NotAction" if draw(st.integers(0, 4)) == 0 else "Action"] = _one_or_list(draw, ACTION_PATTERNS)
    out["NotResource" if draw(st.integers(0, 4)) == 0 else "Resource"] = _one_or_list(draw, RESOURCE_PATTERNS)
    blocks = draw(st.lists(st.sampled_from(CONDITIONS), max_size=2))
    if blocks:
        merged: dict[str, Any] = {}
        for block in blocks:
            for op, keys in block.items():
                merged.setdefault(op, {}).update(keys)
        out["Condition"] = merged
    return out


@st.composite
def documents(draw: st.DrawFn, resource_policy: bool) -> dict[str, Any]:
    body = draw(st.lists(statements(resource_policy), min_size=1, max_size=4))
    seen: set[str] = set()
    for statement in body:  # Sids must be unique
        if statement.get("Sid") in seen:
            del statement["Sid"]
        seen.add(statement.get("Sid", ""))
    return {"Version": "2012-10-17", "Statement": body}


@st.composite
def contexts(draw: st.DrawFn) -> RequestContext:
    who = draw(st.sampled_from(PRINCIPALS))
    principal = RequestPrincipal.anonymous() if who == "anonymous" else RequestPrincipal.from_arn(who)
    return RequestContext(
        principal,
        draw(st.sampled_from(ACTIONS)),
        draw(st.sampled_from(RESOURCES)),
        draw(st.sampled_from(KEY_SETS)),
    )


def _parse(doc: dict[str, Any], resource_policy: bool) -> Policy:
    return parse_policy(
        json.dumps(doc), require_principal=resource_policy, forbid_principal=not resource_policy
    )


@st.composite
def policy_sets(draw: st.DrawFn) -> list[tuple[Policy, PolicyKind]]:
    out = [
        (_parse(draw(documents(False)), False), PolicyKind.IDENTITY) for _ in range(draw(st.integers(0, 2)))
    ]
    if draw(st.booleans()):
        out.append((_parse(draw(documents(True)), True), PolicyKind.RESOURCE))
    return out


@settings(max_examples=300, deadline=None)
@given(policy_sets(), contexts(), st.data(), st.booleans())
def test_adding_a_deny_never_allows(
    policies: list[tuple[Policy, PolicyKind]], ctx: RequestContext, data: st.DataObject, cross: bool
) -> None:
    decide = evaluate_cross_account if cross else evaluate
    before = decide(policies, ctx)
    resource_policy = data.draw(st.booleans())
    deny_doc = {"Version": "2012-10-17", "Statement": [data.draw(statements(resource_policy, "Deny"))]}
    deny = (
        _parse(deny_doc, resource_policy),
        PolicyKind.RESOURCE if resource_policy else PolicyKind.IDENTITY,
    )
    after = decide([*policies, deny], ctx)
    if before is not Decision.ALLOW:
        assert after is not Decision.ALLOW
    assert after in (before, Decision.EXPLICIT_DENY)
    if decide([deny], ctx) is Decision.EXPLICIT_DENY:  # the Deny matches this request
        assert after is Decision.EXPLICIT_DENY


@settings(max_examples=300, deadline=None)
@given(policy_sets(), contexts(), st.randoms(use_true_random=False), st.booleans())
def test_evaluation_is_order_independent(
    policies: list[tuple[Policy, PolicyKind]], ctx: RequestContext, rnd: random.Random, cross: bool
) -> None:
    decide = evaluate_cross_account if cross else evaluate
    expected = decide(policies, ctx)
    shuffled = []
    for policy, kind in policies:
        body = list(policy.statements)
        rnd.shuffle(body)
        shuffled.append((Policy(tuple(body), policy.version, policy.id), kind))
    rnd.shuffle(shuffled)
    assert decide(shuffled, ctx) is expected


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.data())
def test_policy_round_trips(resource_policy: bool, data: st.DataObject) -> None:
    doc = data.draw(documents(resource_policy))
    policy = _parse(doc, resource_policy)
    again = parse_policy(
        policy.dumps(), require_principal=resource_policy, forbid_principal=not resource_policy
    )
    assert again == policy
    assert again.dumps() == policy.dumps()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_crashes(text: str) -> None:
    try:
        parse_policy(text)
    except MalformedPolicy:
        pass
