"""Who may call IAM and STS: an account's root always (inside its account); any other identity when
its identity policies (and session policy) allow the action on the resource. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pails.iam.credentials import Identity, IdentityKind
from pails.iam.iam_errors import access_denied
from pails.iam.policy import (
    Decision,
    Policy,
    PolicyKind,
    RequestContext,
    RequestPrincipal,
    evaluate,
    evaluate_cross_account,
    parse_policy,
    policy_from_json,
)

ALLOW_ALL = parse_policy(
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
)

Keys = Mapping[str, Sequence[str]]


def principal_of(identity: Identity) -> RequestPrincipal:
    if identity.is_root:
        return RequestPrincipal.root(identity.account_id)
    return RequestPrincipal(
        arn=identity.arn, account=identity.account_id, canonical_user=identity.canonical_id
    )


def request_keys(identity: Identity, keys: Keys) -> dict[str, Sequence[str]]:
    out: dict[str, Sequence[str]] = dict(keys)
    if identity.user_id:
        out.setdefault("aws:userid", (identity.user_id,))
    if identity.user_name:
        out.setdefault("aws:username", (identity.user_name,))
    return out


def identity_policies(identity: Identity) -> list[tuple[Policy, PolicyKind]]:
    if identity.is_root:
        return [(ALLOW_ALL, PolicyKind.IDENTITY)]
    return [(p, PolicyKind.IDENTITY) for p in identity.policies]


def _session_allows(identity: Identity, ctx: RequestContext) -> bool:
    if identity.session_policy is None:
        return True
    return evaluate([(identity.session_policy, PolicyKind.IDENTITY)], ctx) is Decision.ALLOW


def allowed(identity: Identity, action: str, resource: str, keys: Keys) -> bool:
    """May `identity` perform `action` on `resource` of its own account (IAM/STS actions)?"""
    if identity.is_root and identity.kind in (IdentityKind.ROOT, IdentityKind.SESSION):
        return True
    ctx = RequestContext(principal_of(identity), action, resource, request_keys(identity, keys))
    return evaluate(identity_policies(identity), ctx) is Decision.ALLOW and _session_allows(identity, ctx)


def authorize(identity: Identity, action: str, resource: str, keys: Keys) -> None:
    if not allowed(identity, action, resource, keys):
        raise access_denied(identity.arn, action, resource)


def may_assume(identity: Identity, trust: Policy, role_arn: str, role_account: str, keys: Keys) -> bool:
    """AssumeRole: the role's trust policy must allow the caller (by ARN, "*" or its account) and
    no policy may deny. A trust naming the account delegates to the account: its users (and role
    sessions) also need an identity-policy Allow of sts:AssumeRole on the role; its root needs none.
    Same account, a trust naming the caller's own ARN suffices (as in AWS). Decision 0012."""
    ctx = RequestContext(principal_of(identity), "sts:AssumeRole", role_arn, request_keys(identity, keys))
    resource = [(trust, PolicyKind.RESOURCE)]
    identity_side = identity_policies(identity)
    if evaluate([*resource, *identity_side], ctx) is Decision.EXPLICIT_DENY:
        return False
    if not _session_allows(identity, ctx):
        return False
    trusted = evaluate_cross_account([*resource, (ALLOW_ALL, PolicyKind.IDENTITY)], ctx) is Decision.ALLOW
    if not trusted:
        return False
    if role_account == identity.account_id and evaluate(resource, ctx) is Decision.ALLOW:
        return True  # the trust names the caller directly
    return evaluate(identity_side, ctx) is Decision.ALLOW


def parse_trust_policy(text: str) -> Policy:
    """A role's trust policy: a resource policy whose resource is the role itself, so its statements
    carry no Resource (one is implied); Principal is required. Raises MalformedPolicy."""
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return parse_policy(text, require_principal=True)  # for its precise message
    if isinstance(raw, dict):
        statements = raw.get("Statement")
        for statement in statements if isinstance(statements, list) else [statements]:
            if isinstance(statement, dict) and "Resource" not in statement and "NotResource" not in statement:
                statement["Resource"] = "*"
    return policy_from_json(raw, require_principal=True)
