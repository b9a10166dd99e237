"""The AWS access policy language: parse, validate and evaluate (pure, no I/O).

    policy = parse_policy(text, require_principal=True)          # a bucket policy
    ctx = RequestContext(RequestPrincipal.from_arn(arn), "s3:GetObject", "arn:aws:s3:::b/k", keys)
    evaluate([(policy, PolicyKind.RESOURCE), (user_policy, PolicyKind.IDENTITY)], ctx)

Evaluation (same account, `evaluate`): an explicit Deny in any policy wins; else an Allow from an
identity policy, or from a resource policy whose Principal names the caller (or "*"), allows; else
the request is implicitly denied. A resource-policy Allow that names only the caller's *account*
("123456789012" or its root ARN) delegates to that account: it allows the root user, and other
principals of the account still need an identity-policy Allow. Cross account
(`evaluate_cross_account`): both the resource policy (naming the caller or its account) and the
caller's identity policies must allow, and no Deny may match. ACLs, permission boundaries, SCPs
and session policies are out of scope. See docs/decisions/0011-policy-evaluation.md.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pails.iam.conditions import (
    UnknownOperator,
    Unresolved,
    evaluate_condition,
    glob_match,
    glob_regex,
    parse_operator,
    substitute,
    tokenize,
    validate_value,
)

VERSIONS = ("2012-10-17", "2008-10-17")
BUCKET_POLICY_MAX_BYTES = 20 * 1024


class MalformedPolicy(ValueError):
    """The document is not a valid policy; `message` says why (it goes back to the client)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class PolicyKind(enum.Enum):
    IDENTITY = "identity"  # attached to the caller (user, group, role): Principal is implicit
    RESOURCE = "resource"  # attached to the resource (bucket policy): Principal says who


class Decision(enum.Enum):
    EXPLICIT_DENY = "explicit_deny"
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit_deny"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Principals:
    """A Principal/NotPrincipal element. `everyone` is the bare string "*"; otherwise `entries`
    maps a principal type ("AWS", "CanonicalUser", "Service", "Federated") to its values."""

    everyone: bool = False
    entries: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def to_json(self) -> Any:
        if self.everyone:
            return "*"
        return {kind: list(values) for kind, values in self.entries}


@dataclass(frozen=True)
class Condition:
    """One `operator -> key -> values` test of a Condition block (values normalised to strings)."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: Effect
    sid: str | None = None
    principal: Principals | None = None
    not_principal: Principals | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sid is not None:
            out["Sid"] = self.sid
        out["Effect"] = self.effect.value
        if self.principal is not None:
            out["Principal"] = self.principal.to_json()
        if self.not_principal is not None:
            out["NotPrincipal"] = self.not_principal.to_json()
        for name, values in (
            ("Action", self.actions),
            ("NotAction", self.not_actions),
            ("Resource", self.resources),
            ("NotResource", self.not_resources),
        ):
            if values is not None:
                out[name] = list(values)
        if self.conditions:
            block: dict[str, dict[str, list[str]]] = {}
            for cond in self.conditions:
                block.setdefault(cond.operator, {})[cond.key] = list(cond.values)
            out["Condition"] = block
        return out


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    version: str | None = "2012-10-17"
    id: str | None = None

    @property
    def variables(self) -> bool:
        """Policy variables exist only in Version 2012-10-17 (older ones take `${` literally)."""
        return self.version == "2012-10-17"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.version is not None:
            out["Version"] = self.version
        if self.id is not None:
            out["Id"] = self.id
        out["Statement"] = [st.to_json() for st in self.statements]
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    def statements_for(self, action: str) -> tuple[Statement, ...]:
        """The statements whose Action/NotAction admits `action` (remembered per action: a
        request's action comes from a fixed table, so there are few)."""
        by_action: dict[str, tuple[Statement, ...]] | None = self.__dict__.get("_by_action")
        if by_action is None:
            by_action = {}
            object.__setattr__(self, "_by_action", by_action)  # not a field: eq, hash, replace ignore it
        found = by_action.get(action)
        if found is None:
            found = tuple(st for st in self.statements if _action_applies(st, action))
            if len(by_action) < 512:
                by_action[action] = found
        return found


# --------------------------------------------------------------------------- parsing

_TOP_KEYS = ("Version", "Id", "Statement")
_STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_PRINCIPAL_TYPES = ("AWS", "CanonicalUser", "Service", "Federated")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedPolicy(f"duplicate key {key!r} in policy document")
        out[key] = value
    return out


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicy(f"{where} must not be an empty list")
    for item in items:
        if not isinstance(item, str) or not item:
            raise MalformedPolicy(f"{where} must be a non-empty string or a list of them, got {item!r}")
    return tuple(items)


def _is_account(text: str) -> bool:
    return len(text) == 12 and text.isdigit()


def _parse_principals(value: Any, where: str) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(f'{where} must be "*" or an object such as {{"AWS": [...]}}, got {value!r}')
    entries: list[tuple[str, tuple[str, ...]]] = []
    for kind, raw in value.items():
        if kind not in _PRINCIPAL_TYPES:
            raise MalformedPolicy(
                f"{where}: unknown principal type {kind!r} (one of {', '.join(_PRINCIPAL_TYPES)})"
            )
        values = _strings(raw, f"{where}.{kind}")
        if kind == "AWS":
            for v in values:
                if v != "*" and not _is_account(v) and not v.startswith("arn:"):
                    raise MalformedPolicy(f'{where}: invalid principal {v!r} (an account id, an ARN or "*")')
        entries.append((kind, values))
    return Principals(entries=tuple(entries))


def _parse_actions(value: Any, where: str) -> tuple[str, ...]:
    actions = _strings(value, where)
    for action in actions:
        service, sep, name = action.partition(":")
        if action != "*" and (not sep or not service or not name or ":" in name):
            raise MalformedPolicy(f'{where}: invalid action {action!r} (expected "service:Action" or "*")')
    return actions


def _parse_resources(value: Any, where: str) -> tuple[str, ...]:
    resources = _strings(value, where)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise MalformedPolicy(
                f'{where}: invalid resource {resource!r} (an ARN such as "arn:aws:s3:::bucket/*")'
            )
    return resources


def _condition_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise MalformedPolicy(f"{where}: condition values must be strings, numbers or booleans, got {value!r}")


def _parse_conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise MalformedPolicy(f"{where} must be an object of operator -> {{key: values}}")
    out: list[Condition] = []
    for operator, block in value.items():
        try:
            spec = parse_operator(operator)
        except UnknownOperator as exc:
            raise MalformedPolicy(f"{where}: {exc}") from None
        if not isinstance(block, dict) or not block:
            raise MalformedPolicy(f"{where}.{operator} must be a non-empty object of condition key -> values")
        for key, raw in block.items():
            if not key or ":" not in key:
                raise MalformedPolicy(
                    f"{where}.{operator}: invalid condition key {key!r} (e.g. aws:SourceIp)"
                )
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise MalformedPolicy(f"{where}.{operator}.{key} has no values")
            values = tuple(_condition_value(v, f"{where}.{operator}.{key}") for v in items)
            for v in values:
                problem = validate_value(spec, v)
                if problem is not None:
                    raise MalformedPolicy(f"{where}.{operator}.{key}: {problem}")
            out.append(Condition(operator, key, values))
    return tuple(out)


def _exactly_one(raw: Mapping[str, Any], a: str, b: str, where: str, required: bool) -> None:
    if a in raw and b in raw:
        raise MalformedPolicy(f"{where} has both {a} and {b}: use one of them")
    if required and a not in raw and b not in raw:
        raise MalformedPolicy(f"{where} needs {a} or {b}")


def _parse_statement(raw: Any, where: str, require_principal: bool, forbid_principal: bool) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"{where} must be an object")
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise MalformedPolicy(f"{where}: unknown element {key!r} (allowed: {', '.join(_STATEMENT_KEYS)})")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicy(f"{where}.Sid must be a string")
    if sid is not None:
        where = f"{where} ({sid!r})"
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f'{where}.Effect must be "Allow" or "Deny", got {effect!r}')
    _exactly_one(raw, "Principal", "NotPrincipal", where, require_principal)
    if forbid_principal and ("Principal" in raw or "NotPrincipal" in raw):
        raise MalformedPolicy(f"{where}: an identity policy must not have Principal or NotPrincipal")
    _exactly_one(raw, "Action", "NotAction", where, True)
    _exactly_one(raw, "Resource", "NotResource", where, True)
    return Statement(
        effect=Effect(effect),
        sid=sid,
        principal=_parse_principals(raw["Principal"], f"{where}.Principal") if "Principal" in raw else None,
        not_principal=(
            _parse_principals(raw["NotPrincipal"], f"{where}.NotPrincipal") if "NotPrincipal" in raw else None
        ),
        actions=_parse_actions(raw["Action"], f"{where}.Action") if "Action" in raw else None,
        not_actions=_parse_actions(raw["NotAction"], f"{where}.NotAction") if "NotAction" in raw else None,
        resources=_parse_resources(raw["Resource"], f"{where}.Resource") if "Resource" in raw else None,
        not_resources=(
            _parse_resources(raw["NotResource"], f"{where}.NotResource") if "NotResource" in raw else None
        ),
        conditions=_parse_conditions(raw["Condition"], f"{where}.Condition") if "Condition" in raw else (),
    )


def parse_policy(
    text: str | bytes,
    *,
    require_principal: bool = False,
    forbid_principal: bool = False,
    max_bytes: int | None = None,
) -> Policy:
    """Parse and validate a policy document; raise MalformedPolicy with the reason.

    Bucket (resource) policies: `require_principal=True` (each statement has exactly one of
    Principal/NotPrincipal). Identity policies: `forbid_principal=True`. A missing Version is
    accepted and means 2008-10-17 semantics (no policy variables), as in AWS."""
    if isinstance(text, bytes):
        if max_bytes is not None and len(text) > max_bytes:
            raise MalformedPolicy(f"policy is {len(text)} bytes; the limit is {max_bytes}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPolicy("policy is not valid UTF-8") from None
    elif max_bytes is not None and len(text.encode("utf-8")) > max_bytes:
        raise MalformedPolicy(f"policy is {len(text.encode('utf-8'))} bytes; the limit is {max_bytes}")
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise MalformedPolicy(
            f"policy is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedPolicy("policy is nested too deeply") from None
    return policy_from_json(raw, require_principal=require_principal, forbid_principal=forbid_principal)


def policy_from_json(raw: Any, *, require_principal: bool = False, forbid_principal: bool = False) -> Policy:
    """Validate an already-decoded JSON document (see parse_policy)."""
    if not isinstance(raw, dict):
        raise MalformedPolicy("policy must be a JSON object")
    for key in raw:
        if key not in _TOP_KEYS:
            raise MalformedPolicy(f"unknown top-level element {key!r} (allowed: Version, Id, Statement)")
    version = raw.get("Version")
    if version is not None and version not in VERSIONS:
        raise MalformedPolicy(f"unsupported Version {version!r} (use 2012-10-17)")
    policy_id = raw.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicy("Id must be a string")
    if "Statement" not in raw:
        raise MalformedPolicy("policy has no Statement")
    raw_statements = raw["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise MalformedPolicy("Statement must be an object or a non-empty list of objects")
    statements = tuple(
        _parse_statement(st, f"Statement[{i}]", require_principal, forbid_principal)
        for i, st in enumerate(raw_statements)
    )
    sids = [st.sid for st in statements if st.sid]
    duplicates = sorted({sid for sid in sids if sids.count(sid) > 1})
    if duplicates:
        raise MalformedPolicy(f"statement ids must be unique; repeated: {', '.join(duplicates)}")
    return Policy(statements=statements, version=version, id=policy_id)


# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class RequestPrincipal:
    """Who is asking. All None is the anonymous principal."""

    arn: str | None = None
    account: str | None = None
    canonical_user: str | None = None
    service: str | None = None

    @classmethod
    def anonymous(cls) -> RequestPrincipal:
        return cls()

    @classmethod
    def from_arn(cls, arn: str, canonical_user: str | None = None) -> RequestPrincipal:
        parts = arn.split(":", 5)
        account = parts[4] if len(parts) == 6 and parts[4] else None
        return cls(arn=arn, account=account, canonical_user=canonical_user)

    @classmethod
    def root(cls, account: str) -> RequestPrincipal:
        return cls(arn=f"arn:aws:iam::{account}:root", account=account)

    @property
    def is_anonymous(self) -> bool:
        return self.arn is None and self.canonical_user is None and self.service is None

    @property
    def is_root(self) -> bool:
        return (
            self.arn is not None
            and self.account is not None
            and self.arn == _root_arn(self.arn, self.account)
        )


def _root_arn(like: str, account: str) -> str:
    partition = like.split(":", 2)[1] if like.count(":") >= 2 else "aws"
    return f"arn:{partition}:iam::{account}:root"


@lru_cache(maxsize=4096)
def _derived_keys(principal: RequestPrincipal) -> dict[str, tuple[str, ...]]:
    """(Shared: copy before changing.)"""
    out: dict[str, tuple[str, ...]] = {}
    if principal.arn is not None:
        out["aws:principalarn"] = (principal.arn,)
        resource = principal.arn.split(":", 5)[-1]
        if resource.startswith("user/"):
            out["aws:username"] = (resource.rsplit("/", 1)[-1],)
            out["aws:principaltype"] = ("User",)
        elif resource == "root":
            out["aws:principaltype"] = ("Account",)
        elif resource.startswith("assumed-role/"):
            out["aws:principaltype"] = ("AssumedRole",)
    elif principal.is_anonymous:
        out["aws:principaltype"] = ("Anonymous",)
    if principal.account is not None:
        out["aws:principalaccount"] = (principal.account,)
    return out


_NO_KEYS: Mapping[str, Sequence[str]] = {}


class RequestContext:
    """One authorization question: may `principal` do `action` on `resource`?

    `keys` are the condition keys of the request (aws:SourceIp, aws:SecureTransport,
    aws:CurrentTime, s3:prefix, s3:ExistingObjectTag/<k>, ...), each a list of strings; names are
    matched case-insensitively. aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType and (for
    IAM users) aws:username are derived from the principal unless given. The keys are read only
    when a statement asks for one (most evaluations never do: `keys` may gather them lazily)."""

    __slots__ = ("_index", "action", "keys", "principal", "resource")

    def __init__(
        self,
        principal: RequestPrincipal,
        action: str,
        resource: str,
        keys: Mapping[str, Sequence[str]] = _NO_KEYS,
    ) -> None:
        self.principal = principal
        self.action = action
        self.resource = resource
        self.keys = keys
        self._index: dict[str, tuple[str, ...]] | None = None

    def __repr__(self) -> str:
        return f"RequestContext({self.principal!r}, {self.action!r}, {self.resource!r})"

    def values(self, key: str) -> tuple[str, ...] | None:
        index = self._index
        if index is None:
            index = dict(_derived_keys(self.principal))
            for name, values in self.keys.items():
                index[name.lower()] = (values,) if isinstance(values, str) else tuple(values)
            self._index = index
        return index.get(key.lower())


# --------------------------------------------------------------------------- matching


class _Match(enum.IntEnum):
    NONE = 0
    ACCOUNT = 1  # only through the caller's account (delegation to that account)
    DIRECT = 2  # "*", the caller's ARN, canonical user or service


def _principal_match(spec: Principals, who: RequestPrincipal) -> _Match:
    if spec.everyone:
        return _Match.DIRECT
    best = _Match.NONE
    for kind, values in spec.entries:
        for value in values:
            if kind == "AWS":
                if value == "*":
                    return _Match.DIRECT
                if who.arn is None:
                    continue
                if _is_account(value):
                    if who.account == value:
                        if who.is_root:
                            return _Match.DIRECT
                        best = _Match.ACCOUNT
                    continue
                arn_parts = value.split(":", 5)
                if (
                    len(arn_parts) == 6
                    and arn_parts[2] == "iam"
                    and arn_parts[5] == "root"
                    and who.account == arn_parts[4]
                    and not who.is_root
                ):
                    best = _Match.ACCOUNT
                    continue
                if _principal_regex(value).fullmatch(who.arn):
                    return _Match.DIRECT
            elif kind == "CanonicalUser":
                if value == "*" or value == who.canonical_user:
                    return _Match.DIRECT
            elif kind == "Service" and who.service is not None and value in ("*", who.service):
                return _Match.DIRECT
            # Federated principals are never matched (no web identity / SAML in Pails).
    return best


def _not_principal_excludes(spec: Principals, who: RequestPrincipal) -> bool:
    """NotPrincipal excludes the caller only when the caller itself is listed and, for a principal
    inside an account, that account (its id or root ARN) is listed too, as AWS documents."""
    if _principal_match(spec, who) != _Match.DIRECT:
        return False
    if spec.everyone or who.arn is None or who.account is None or who.is_root:
        return True
    return _principal_match(spec, RequestPrincipal.root(who.account)) == _Match.DIRECT


@lru_cache(maxsize=8192)
def _principal_regex(arn_pattern: str) -> re.Pattern[str]:
    return glob_regex(substitute(tokenize(arn_pattern, False), None), True)


@lru_cache(maxsize=65536)
def _action_matches(pattern: str, action: str) -> bool:
    return glob_match(pattern, action, ignore_case=True)


@lru_cache(maxsize=8192)
def _fixed_resource_regex(pattern: str, variables: bool) -> re.Pattern[str] | None:
    """The compiled Resource pattern when it holds no policy variable (None: it does)."""
    tokens = tokenize(pattern, variables)
    if any(kind == "var" for kind, _, _ in tokens):
        return None
    return glob_regex(substitute(tokens, None), True)


@lru_cache(maxsize=8192)
def _fixed_resource_regexes(patterns: tuple[str, ...], variables: bool) -> tuple[re.Pattern[str], ...] | None:
    """The compiled patterns of a Resource element when none holds a policy variable (else None)."""
    regexes = tuple(_fixed_resource_regex(pattern, variables) for pattern in patterns)
    return None if any(regex is None for regex in regexes) else regexes  # type: ignore[return-value]


def _resource_matches(patterns: tuple[str, ...], resource: str, policy: Policy, ctx: RequestContext) -> bool:
    """Raises Unresolved when a pattern's variable has no value."""
    variables = policy.variables
    fixed = _fixed_resource_regexes(patterns, variables)
    if fixed is not None:
        for compiled in fixed:  # noqa: SIM110 (a loop, not any(): no generator on the hot path)
            if compiled.fullmatch(resource) is not None:
                return True
        return False
    lookup = ctx.values if variables else None
    for pattern in patterns:
        regex = _fixed_resource_regex(pattern, variables)
        if regex is None:
            regex = glob_regex(substitute(tokenize(pattern, True), lookup), True)
        if regex.fullmatch(resource) is not None:
            return True
    return False


def _action_applies(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return any(_action_matches(a, action) for a in statement.actions)
    return statement.not_actions is None or not any(_action_matches(a, action) for a in statement.not_actions)


def _applies(statement: Statement, policy: Policy, kind: PolicyKind, ctx: RequestContext) -> _Match:
    """Whether `statement` applies to the request; for resource policies, how the principal matched."""
    if not _action_applies(statement, ctx.action):
        return _Match.NONE
    return _applies_to_action(statement, policy, kind, ctx)


def _applies_to_action(statement: Statement, policy: Policy, kind: PolicyKind, ctx: RequestContext) -> _Match:
    """`_applies` for a statement whose Action already admits the request's."""
    how = _Match.DIRECT
    if kind is PolicyKind.RESOURCE:
        if statement.principal is not None:
            how = _principal_match(statement.principal, ctx.principal)
        elif statement.not_principal is not None:
            how = (
                _Match.NONE
                if _not_principal_excludes(statement.not_principal, ctx.principal)
                else _Match.DIRECT
            )
        else:
            how = _Match.NONE  # a resource policy statement without a principal grants nobody
        if how is _Match.NONE:
            return how
    try:
        if statement.resources is not None:
            if not _resource_matches(statement.resources, ctx.resource, policy, ctx):
                return _Match.NONE
        elif statement.not_resources is not None and _resource_matches(
            statement.not_resources, ctx.resource, policy, ctx
        ):
            return _Match.NONE
        for cond in statement.conditions:
            if not evaluate_condition(cond.operator, cond.key, cond.values, ctx.values, policy.variables):
                return _Match.NONE
    except Unresolved:
        return _Match.NONE  # AWS: an unresolvable variable makes the whole statement not match
    return how


def _tally(policies: Sequence[tuple[Policy, PolicyKind]], ctx: RequestContext) -> tuple[bool, bool, _Match]:
    """(a Deny applies, an identity-policy Allow applies, how a resource-policy Allow matched)."""
    deny = identity_allow = False
    resource_allow = _Match.NONE
    action = ctx.action
    for policy, kind in policies:
        for statement in policy.statements_for(action):
            how = _applies_to_action(statement, policy, kind, ctx)
            if how is _Match.NONE:
                continue
            if statement.effect is Effect.DENY:
                deny = True
            elif kind is PolicyKind.IDENTITY:
                identity_allow = True
            elif how > resource_allow:
                resource_allow = how
    return deny, identity_allow, resource_allow


@dataclass(frozen=True, slots=True)
class IdentityPlan:
    """How identity policies answer one action when none of the statements naming it tests a
    condition or a policy variable: by the resource alone, with one regex per effect."""

    deny: re.Pattern[str] | None
    allow: re.Pattern[str] | None

    def decide(self, resource: str) -> Decision:
        """`evaluate` of the identity policies for this action on `resource`."""
        if self.deny is not None and self.deny.fullmatch(resource) is not None:
            return Decision.EXPLICIT_DENY
        if self.allow is not None and self.allow.fullmatch(resource) is not None:
            return Decision.ALLOW
        return Decision.IMPLICIT_DENY


def identity_plan(policies: Sequence[Policy], action: str) -> IdentityPlan | None:
    """The IdentityPlan of identity policies for `action`, or None when a statement naming it
    has a condition, a NotResource or a policy variable (then `evaluate` them)."""
    found: dict[Effect, list[re.Pattern[str]]] = {Effect.DENY: [], Effect.ALLOW: []}
    for policy in policies:
        for statement in policy.statements_for(action):
            if statement.conditions or statement.resources is None:
                return None
            regexes = _fixed_resource_regexes(statement.resources, policy.variables)
            if regexes is None:
                return None
            found[statement.effect].extend(regexes)
    everything = found[Effect.DENY] + found[Effect.ALLOW]
    if any(regex.flags != everything[0].flags for regex in everything):
        return None
    return IdentityPlan(_any_of(found[Effect.DENY]), _any_of(found[Effect.ALLOW]))


def _any_of(regexes: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    if len(regexes) <= 1:
        return regexes[0] if regexes else None
    return re.compile("|".join(f"(?:{regex.pattern})" for regex in regexes), regexes[0].flags)


def evaluate(policies: Sequence[tuple[Policy, PolicyKind]], ctx: RequestContext) -> Decision:
    """Same-account evaluation (also the anonymous case): explicit Deny anywhere wins; else an
    identity-policy Allow or a resource-policy Allow naming the caller allows; else implicit deny.
    A resource-policy Allow naming only the caller's account does not by itself allow a user or
    role of that account (it delegates to the account's identity policies)."""
    deny, identity_allow, resource_allow = _tally(policies, ctx)
    if deny:
        return Decision.EXPLICIT_DENY
    if identity_allow or resource_allow is _Match.DIRECT:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY


def evaluate_cross_account(policies: Sequence[tuple[Policy, PolicyKind]], ctx: RequestContext) -> Decision:
    """The caller belongs to another account than the resource: the resource policy must allow the
    caller (by ARN, "*" or its account) AND one of the caller's identity policies must allow;
    an explicit Deny in either wins. (Identity policies are the caller's account's; resource
    policies are the resource owner's.)"""
    deny, identity_allow, resource_allow = _tally(policies, ctx)
    if deny:
        return Decision.EXPLICIT_DENY
    if identity_allow and resource_allow is not _Match.NONE:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY
