"""The authorization decision for one permission of one request, as AWS makes it (pure, no I/O).

    decide(identity, access, bucket, object_acl, keys) -> Decision

- An explicit Deny in any policy in force (the caller's identity policies, its session policy,
  the bucket policy) wins.
- The bucket owner's account root is allowed on its own bucket and everything in it (Deny
  statements of the bucket policy still bind it, except for Get/Put/DeleteBucketPolicy, so that
  the owner can always repair a policy that locks it out, as in AWS).
- Otherwise the caller is allowed when, in the same account as the bucket, an identity policy
  allows (narrowed by the session policy when there is one), or the bucket policy or an ACL grant
  names the caller directly; across accounts, both sides must allow: the caller's identity
  policies (an account root has them all) and the bucket policy or an ACL grant naming the caller
  or its account. Anonymous callers need the bucket policy or an ACL to allow everyone.
- PublicAccessBlock: IgnorePublicAcls drops AllUsers/AuthenticatedUsers grants;
  RestrictPublicBuckets keeps a public bucket policy from granting anyone outside the owner's
  account. (BlockPublicAcls/BlockPublicPolicy refuse writes of public ACLs/policies elsewhere.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from pails.iam.acl import ALL_USERS, AUTHENTICATED_USERS, Acl, permits
from pails.iam.actions import Access
from pails.iam.credentials import Identity, IdentityKind
from pails.iam.policy import (
    Decision,
    Effect,
    IdentityPlan,
    Policy,
    PolicyKind,
    RequestContext,
    RequestPrincipal,
    Statement,
    evaluate,
    evaluate_cross_account,
    identity_plan,
)
from pails.iam.public import PublicAccessBlock, policy_is_public
from pails.meta.models import Bucket

# Actions the bucket owner's root keeps even when its own bucket policy denies them.
_OWNER_REPAIR_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})

_ALLOW_ALL = Policy(statements=(Statement(effect=Effect.ALLOW, actions=("*",), resources=("*",)),))


@dataclass(frozen=True)
class BucketAuth:
    """What authorization needs to know about a bucket (cached: see pails.iam.cache)."""

    name: str
    bucket_id: int
    owner_id: str  # the owner's canonical id
    owner_account: str | None
    policy: Policy | None
    acl: Acl
    pab: PublicAccessBlock | None
    policy_text: str | None = None
    row: Bucket | None = None
    """The bucket's metadata row as loaded with the rest (BucketService serves it from here)."""

    @cached_property
    def deny_policy(self) -> Policy | None:
        """The policy's Deny statements alone: all that can change the answer for a caller that
        is allowed anyway (the owner's root, or a same-account caller its identity policy allows)."""
        if self.policy is None:
            return None
        denies = tuple(st for st in self.policy.statements if st.effect is Effect.DENY)
        return replace(self.policy, statements=denies) if denies else None

    @cached_property
    def policy_public(self) -> bool:
        return policy_is_public(self.policy)

    @cached_property
    def mentions_existing_object_tags(self) -> bool:
        return self.policy is not None and _mentions(self.policy, "s3:existingobjecttag/")


def _mentions(policy: Policy, key_prefix: str) -> bool:
    return any(c.key.lower().startswith(key_prefix) for st in policy.statements for c in st.conditions)


def policies_mention(policies: Sequence[Policy], key_prefix: str) -> bool:
    return any(_mentions(p, key_prefix) for p in policies)


def role_arn(assumed_role_arn: str) -> str:
    """arn:aws:sts::A:assumed-role/ROLE/SESSION -> arn:aws:iam::A:role/ROLE."""
    parts = assumed_role_arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("assumed-role/"):
        return assumed_role_arn
    role = parts[5].split("/")[1]
    return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"


_ANONYMOUS = RequestPrincipal.anonymous()
_ANONYMOUS_KEYS: Mapping[str, tuple[str, ...]] = {"aws:principaltype": ("Anonymous",)}


@dataclass(frozen=True, slots=True)
class _Caller:
    """What authorization derives from an identity, once per Identity object."""

    identity: Identity  # held so that its id() is not reused while this entry lives
    principal: RequestPrincipal
    keys: Mapping[str, tuple[str, ...]]
    policies: tuple[tuple[Policy, PolicyKind], ...]
    session_policy: tuple[tuple[Policy, PolicyKind], ...]
    tests_object_tags: bool  # an identity policy tests s3:ExistingObjectTag/<key>
    plans: dict[str, IdentityPlan | None]  # by action (see identity_plan)

    def plan(self, action: str) -> IdentityPlan | None:
        try:
            return self.plans[action]
        except KeyError:
            plan = self.plans[action] = identity_plan([policy for policy, _ in self.policies], action)
            return plan


_CALLERS: dict[int, _Caller] = {}
_MAX_CALLERS = 4096


def _caller(identity: Identity) -> _Caller:
    # Identities are immutable and the credential cache hands out the same object for a while:
    # keyed by id(), checked by identity (the entry keeps the object alive, so the id is not reused).
    caller = _CALLERS.get(id(identity))
    if caller is not None and caller.identity is identity:
        return caller
    arn = identity.arn or f"arn:aws:iam::{identity.account_id}:root"
    caller = _Caller(
        identity,
        RequestPrincipal(
            arn=arn,
            account=identity.account_id,
            canonical_user=identity.canonical_id if identity.is_root else None,
        ),
        _identity_keys(identity, arn),
        tuple((p, PolicyKind.IDENTITY) for p in identity.policies),
        () if identity.session_policy is None else ((identity.session_policy, PolicyKind.IDENTITY),),
        policies_mention(identity.policies, "s3:existingobjecttag/"),
        {},
    )
    if len(_CALLERS) >= _MAX_CALLERS:
        _CALLERS.clear()
    _CALLERS[id(identity)] = caller
    return caller


def principal_of(identity: Identity | None) -> RequestPrincipal:
    return _ANONYMOUS if identity is None else _caller(identity).principal


def tests_existing_object_tags(identity: Identity | None) -> bool:
    """Whether the caller's identity policies test s3:ExistingObjectTag/<key>."""
    return identity is not None and _caller(identity).tests_object_tags


def caller_keys(identity: Identity | None) -> Mapping[str, tuple[str, ...]]:
    """The aws:* keys that describe the caller (shared: do not modify)."""
    return _ANONYMOUS_KEYS if identity is None else _caller(identity).keys


def identity_keys(identity: Identity | None) -> dict[str, tuple[str, ...]]:
    """The aws:* keys that describe the caller (a new dict)."""
    return dict(caller_keys(identity))


def _identity_keys(identity: Identity, arn: str) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {"aws:principalaccount": (identity.account_id,)}
    if identity.kind is IdentityKind.ASSUMED_ROLE:
        keys["aws:principalarn"] = (role_arn(arn),)
        keys["aws:principaltype"] = ("AssumedRole",)
    else:
        keys["aws:principalarn"] = (arn,)
    if identity.user_name and identity.kind in (IdentityKind.USER, IdentityKind.SESSION):
        keys["aws:username"] = (identity.user_name,)
    if identity.user_id:
        keys["aws:userid"] = (identity.user_id,)
    elif identity.is_root:
        keys["aws:userid"] = (identity.account_id,)
    return keys


def is_same_account(identity: Identity | None, bucket: BucketAuth) -> bool:
    if identity is None:
        return False
    if bucket.owner_account is not None:
        return identity.account_id == bucket.owner_account
    return identity.canonical_id == bucket.owner_id


def owner_allowed(identity: Identity | None, action: str, bucket: BucketAuth) -> bool:
    """True when `decide` would allow `action` on `bucket` whatever the condition keys and the
    object: the caller is the root of the bucket owner's account, acting without identity or
    session policies, and no Deny statement of the bucket policy names the action. (False means
    "ask `decide`", not "denied".) The common request's whole decision, without gathering keys."""
    return (
        identity is not None
        and identity.is_root
        and not identity.policies
        and identity.session_policy is None
        and is_same_account(identity, bucket)
        and (bucket.deny_policy is None or not bucket.deny_policy.statements_for(action))
    )


def _grant_match(
    acl: Acl | None, identity: Identity | None, action: str, on_object: bool, ignore_public: bool
) -> int:
    """0: no grant; 1: a grant to the caller's account (delegation); 2: a grant to the caller."""
    if acl is None:
        return 0
    best = 0
    for grant in acl.grants:
        if not permits(grant.permission, action, on_object):
            continue
        if grant.kind == "Group":
            if ignore_public:
                continue
            if grant.grantee == ALL_USERS or (grant.grantee == AUTHENTICATED_USERS and identity is not None):
                return 2
        elif identity is not None and grant.grantee == identity.canonical_id:
            if identity.is_root:
                return 2
            best = 1
    return best


def decide(
    identity: Identity | None,
    access: Access,
    bucket: BucketAuth | None,
    keys: Mapping[str, Sequence[str]],
    object_acl: Acl | None = None,
) -> Decision:
    """May `identity` (None: anonymous) have `access`? `bucket` is None for ListBuckets/CreateBucket
    (only identity policies apply); `object_acl` is the target object's ACL when it is known.
    `keys` is read only when a policy statement tests a condition key or a policy variable."""
    ctx: RequestContext | None = None  # made when a policy is evaluated
    if identity is None:
        principal = _ANONYMOUS
        identity_allow = False
    else:
        caller = _caller(identity)
        principal = caller.principal
        identity_allow = identity.is_root
        if caller.policies:
            plan = caller.plan(access.action)
            if plan is not None:
                verdict = plan.decide(access.resource)
            else:
                ctx = RequestContext(principal, access.action, access.resource, keys)
                verdict = evaluate(caller.policies, ctx)
            if verdict is Decision.EXPLICIT_DENY:
                return verdict
            identity_allow = identity_allow or verdict is Decision.ALLOW
        if caller.session_policy:
            ctx = ctx or RequestContext(principal, access.action, access.resource, keys)
            verdict = evaluate(caller.session_policy, ctx)
            if verdict is Decision.EXPLICIT_DENY:
                return verdict
            identity_allow = identity_allow and verdict is Decision.ALLOW
    if bucket is None:
        return Decision.ALLOW if identity_allow else Decision.IMPLICIT_DENY

    same_account = is_same_account(identity, bucket)
    owner_root = same_account and identity is not None and identity.is_root
    direct = delegated = False
    if (owner_root or (same_account and identity_allow)) and access.action not in _OWNER_REPAIR_ACTIONS:
        # Allowed unless a Deny matches: the Allow statements cannot change the answer.
        denies = bucket.deny_policy
        if denies is None or not denies.statements_for(access.action):
            return Decision.ALLOW
        ctx = ctx or RequestContext(principal, access.action, access.resource, keys)
        if evaluate([(denies, PolicyKind.RESOURCE)], ctx) is Decision.EXPLICIT_DENY:
            return Decision.EXPLICIT_DENY
        return Decision.ALLOW
    if bucket.policy is not None:
        ctx = ctx or RequestContext(principal, access.action, access.resource, keys)
        verdict = evaluate([(bucket.policy, PolicyKind.RESOURCE)], ctx)
        if verdict is Decision.EXPLICIT_DENY:
            if not (owner_root and access.action in _OWNER_REPAIR_ACTIONS):
                return verdict
        elif owner_root:
            return Decision.ALLOW
        elif not (
            bucket.pab is not None
            and bucket.pab.restrict_public_buckets
            and not same_account
            and bucket.policy_public
        ):
            if verdict is Decision.ALLOW:
                direct = True
            elif identity is not None and not same_account:  # delegation counts across accounts only
                crossed = evaluate_cross_account(
                    [(bucket.policy, PolicyKind.RESOURCE), (_ALLOW_ALL, PolicyKind.IDENTITY)], ctx
                )
                delegated = crossed is Decision.ALLOW
    if owner_root:
        return Decision.ALLOW

    ignore_public = bucket.pab is not None and bucket.pab.ignore_public_acls
    if access.on_object:
        grant = max(
            _grant_match(bucket.acl, identity, access.action, False, ignore_public),
            _grant_match(object_acl, identity, access.action, True, ignore_public),
        )
    else:
        grant = _grant_match(bucket.acl, identity, access.action, False, ignore_public)
    direct = direct or grant == 2
    delegated = delegated or grant >= 1

    if identity is None:
        allowed = direct
    elif same_account:
        allowed = identity_allow or direct
    else:
        allowed = identity_allow and (direct or delegated)
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
