"""Public access: the PublicAccessBlock configuration and whether a bucket policy is "public".

Pure. AWS calls a policy public when an Allow statement grants a wildcard principal without a
condition that pins the caller to fixed values (source IP ranges, accounts, ARNs, VPCs). Pails
applies the same rule: an Allow statement whose Principal is "*" (or `{"AWS": "*"}`, or a
NotPrincipal) is public unless one of its conditions tests one of the pinning keys below with a
positive operator and no wildcard value (and, for IP ranges, not a /0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pails.iam.conditions import parse_network
from pails.iam.policy import Effect, Policy, Statement

PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    def to_json(self) -> str:
        return json.dumps(dict(zip(PAB_FIELDS, self.values(), strict=True)), separators=(",", ":"))

    def values(self) -> tuple[bool, bool, bool, bool]:
        return (
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets,
        )

    @classmethod
    def from_json(cls, text: str | None) -> PublicAccessBlock | None:
        if not text:
            return None
        raw = json.loads(text)
        return cls(*(bool(raw.get(name, False)) for name in PAB_FIELDS))


_PINNING_KEYS = frozenset(
    {
        "aws:sourceip",
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:userid",
        "aws:username",
        "s3:dataaccesspointaccount",
        "s3:dataaccesspointarn",
    }
)
_POSITIVE_PREFIXES = ("stringequals", "stringlike", "arnequals", "arnlike", "ipaddress")


def _pins(operator: str, key: str, values: tuple[str, ...]) -> bool:
    op = operator.lower()
    if op.startswith("forallvalues:") or op.endswith("ifexists") or "not" in op:
        return False
    op = op.removeprefix("foranyvalue:")
    if key.lower() not in _PINNING_KEYS or not op.startswith(_POSITIVE_PREFIXES):
        return False
    for value in values:
        if op.startswith("ipaddress"):
            network = parse_network(value)
            if network is None or network.prefixlen == 0:
                return False
        elif "*" in value or "?" in value:
            return False
    return True


def statement_is_public(statement: Statement) -> bool:
    if statement.effect is not Effect.ALLOW:
        return False
    wildcard = statement.not_principal is not None
    if statement.principal is not None:
        if statement.principal.everyone:
            wildcard = True
        for _, values in statement.principal.entries:
            if "*" in values:
                wildcard = True
    if not wildcard:
        return False
    return not any(_pins(c.operator, c.key, c.values) for c in statement.conditions)


def policy_is_public(policy: Policy | None) -> bool:
    return policy is not None and any(statement_is_public(st) for st in policy.statements)
