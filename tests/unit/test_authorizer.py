"""The authorization decision (pails.iam.authorizer.decide) over hand-built identities, bucket
policies, ACLs and PublicAccessBlock settings."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pails.iam.acl import Acl, Grant, canned, private
from pails.iam.actions import Access, required
from pails.iam.authorizer import BucketAuth, decide, identity_keys, owner_allowed
from pails.iam.credentials import Identity, IdentityKind
from pails.iam.policy import Decision, Policy, parse_policy
from pails.iam.public import PublicAccessBlock, policy_is_public

A, B = "111111111111", "222222222222"
CA, CB = "ca" * 32, "cb" * 32

ALLOW, IMPLICIT, DENY = Decision.ALLOW, Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY


def identity_policy(*statements: dict[str, Any]) -> Policy:
    return parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), forbid_principal=True
    )


def bucket_policy(*statements: dict[str, Any]) -> Policy:
    return parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), require_principal=True
    )


def root(account: str, canonical: str) -> Identity:
    return Identity(
        access_key="AK" + account,
        account_id=account,
        canonical_id=canonical,
        display_name=f"root-{account}",
        is_root=True,
        kind=IdentityKind.ROOT,
        arn=f"arn:aws:iam::{account}:root",
    )


def user(account: str, canonical: str, name: str, *policies: Policy) -> Identity:
    return Identity(
        access_key="AK" + name,
        account_id=account,
        canonical_id=canonical,
        display_name=name,
        kind=IdentityKind.USER,
        arn=f"arn:aws:iam::{account}:user/{name}",
        user_name=name,
        user_id="AID" + name.upper(),
        policies=policies,
    )


def role_session(
    account: str, canonical: str, policies: tuple[Policy, ...], session: Policy | None
) -> Identity:
    return Identity(
        access_key="ASIA" + account,
        account_id=account,
        canonical_id=canonical,
        display_name="role",
        kind=IdentityKind.ASSUMED_ROLE,
        arn=f"arn:aws:sts::{account}:assumed-role/reader/s1",
        user_id="AROAREADER:s1",
        policies=policies,
        session_policy=session,
    )


ALL_S3 = identity_policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
GET_ONLY = identity_policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
ROOT_A, ROOT_B = root(A, CA), root(B, CB)


def bucket(
    policy: Policy | None = None, acl: Acl | None = None, pab: PublicAccessBlock | None = None
) -> BucketAuth:
    return BucketAuth(
        name="b", bucket_id=1, owner_id=CA, owner_account=A, policy=policy, acl=acl or private(CA), pab=pab
    )


def get(key: str = "k") -> Access:
    return required("GetObject", "b", key, {}, {})[0]


def put(key: str = "k") -> Access:
    return required("PutObject", "b", key, {}, {})[0]


def list_bucket(prefix: str | None = None) -> Access:
    return required("ListObjectsV2", "b", None, {"prefix": prefix} if prefix is not None else {}, {})[0]


def run(identity: Identity | None, access: Access, b: BucketAuth | None, obj_acl: Acl | None = None,
        **extra: str) -> Decision:  # fmt: skip
    keys = {**identity_keys(identity), "aws:sourceip": (extra.get("ip", "127.0.0.1"),), **access.keys}
    return decide(identity, access, b, keys, obj_acl)


def test_owner_root_and_strangers() -> None:
    assert run(ROOT_A, get(), bucket()) is ALLOW
    assert run(ROOT_B, get(), bucket()) is IMPLICIT
    assert run(None, get(), bucket()) is IMPLICIT
    assert run(user(A, CA, "alice"), get(), bucket()) is IMPLICIT


def test_same_account_user_needs_identity_or_direct_resource_grant() -> None:
    alice = user(A, CA, "alice", GET_ONLY)
    assert run(alice, get(), bucket()) is ALLOW
    assert run(alice, put(), bucket()) is IMPLICIT
    by_arn = bucket_policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:user/bob"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::b/*"}
    )  # fmt: skip
    assert run(user(A, CA, "bob"), put(), bucket(by_arn)) is ALLOW
    by_account = bucket_policy(
        {"Effect": "Allow", "Principal": {"AWS": A}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}
    )
    assert run(user(A, CA, "bob"), put(), bucket(by_account)) is IMPLICIT


def test_explicit_deny_wins_everywhere() -> None:
    deny_put = bucket_policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"},
    )
    alice = user(A, CA, "alice", ALL_S3)
    assert run(alice, put(), bucket(deny_put)) is DENY
    assert run(ROOT_A, put(), bucket(deny_put)) is DENY
    # the owner can always repair its bucket policy
    deny_all = bucket_policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}
    )
    assert run(ROOT_A, required("DeleteBucketPolicy", "b", None, {}, {})[0], bucket(deny_all)) is ALLOW
    assert run(ROOT_A, list_bucket(), bucket(deny_all)) is DENY
    denying_user = user(
        A, CA, "carol", ALL_S3, identity_policy({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"})
    )
    public = bucket_policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    )
    assert run(denying_user, get(), bucket(public)) is DENY


def test_cross_account_needs_both_sides() -> None:
    grant_b = bucket_policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::b/*"}
    )  # fmt: skip
    assert run(ROOT_B, get(), bucket(grant_b)) is ALLOW
    assert run(user(B, CB, "bea", GET_ONLY), get(), bucket(grant_b)) is ALLOW
    assert run(user(B, CB, "bea"), get(), bucket(grant_b)) is IMPLICIT
    assert run(user(B, CB, "bea", ALL_S3), get(), bucket()) is IMPLICIT
    assert run(ROOT_B, put(), bucket(grant_b)) is IMPLICIT


def test_acl_grants() -> None:
    to_b = Acl(CA, (Grant("CanonicalUser", CA, "FULL_CONTROL"), Grant("CanonicalUser", CB, "READ")))
    assert run(ROOT_B, list_bucket(), bucket(acl=to_b)) is ALLOW
    assert run(user(B, CB, "bea"), list_bucket(), bucket(acl=to_b)) is IMPLICIT
    assert run(user(B, CB, "bea", ALL_S3), list_bucket(), bucket(acl=to_b)) is ALLOW
    # bucket READ does not read objects; the object's ACL does
    assert run(ROOT_B, get(), bucket(acl=to_b)) is IMPLICIT
    assert run(ROOT_B, get(), bucket(), obj_acl=to_b) is ALLOW
    # public-read-write bucket: anyone writes objects
    assert run(None, put(), bucket(acl=canned("public-read-write", CA))) is ALLOW
    assert run(None, put(), bucket(acl=canned("public-read", CA))) is IMPLICIT
    authenticated = canned("authenticated-read", CA)
    assert run(None, get(), bucket(), obj_acl=authenticated) is IMPLICIT
    assert run(ROOT_B, get(), bucket(), obj_acl=authenticated) is ALLOW
    assert run(None, get(), bucket(), obj_acl=canned("public-read", CA)) is ALLOW


def test_anonymous_and_public_policies() -> None:
    public = bucket_policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    )
    assert policy_is_public(public)
    assert run(None, get(), bucket(public)) is ALLOW
    assert run(None, put(), bucket(public)) is IMPLICIT
    pinned = bucket_policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}}
    )  # fmt: skip
    assert not policy_is_public(pinned)
    assert run(None, get(), bucket(pinned)) is ALLOW
    assert run(None, get(), bucket(pinned), ip="10.1.2.3") is IMPLICIT


def test_public_access_block() -> None:
    public = bucket_policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    )
    restrict = PublicAccessBlock(restrict_public_buckets=True)
    assert run(None, get(), bucket(public, pab=restrict)) is IMPLICIT
    assert run(user(B, CB, "bea", ALL_S3), get(), bucket(public, pab=restrict)) is IMPLICIT
    assert run(user(A, CA, "alice"), get(), bucket(public, pab=restrict)) is ALLOW
    ignore = PublicAccessBlock(ignore_public_acls=True)
    assert run(None, get(), bucket(pab=ignore), obj_acl=canned("public-read", CA)) is IMPLICIT
    assert run(ROOT_B, list_bucket(), bucket(acl=canned("authenticated-read", CA), pab=ignore)) is IMPLICIT


def test_session_policy_narrows() -> None:
    narrow = identity_policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/public/*"}
    )
    session = role_session(A, CA, (ALL_S3,), narrow)
    assert run(session, get("public/x"), bucket()) is ALLOW
    assert run(session, get("private/x"), bucket()) is IMPLICIT
    assert run(session, put("public/x"), bucket()) is IMPLICIT
    assert run(role_session(A, CA, (ALL_S3,), None), put("private/x"), bucket()) is ALLOW
    keys = identity_keys(session)
    assert keys["aws:principalarn"] == (f"arn:aws:iam::{A}:role/reader",)


def test_policy_variables_scope_users_to_their_home() -> None:
    home = identity_policy(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/home/${aws:username}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
         "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}},
    )  # fmt: skip
    alice = user(A, CA, "alice", home)
    assert run(alice, put("home/alice/f"), bucket()) is ALLOW
    assert run(alice, put("home/bob/f"), bucket()) is IMPLICIT
    assert run(alice, list_bucket("home/alice/"), bucket()) is ALLOW
    assert run(alice, list_bucket("home/bob/"), bucket()) is IMPLICIT
    assert run(alice, list_bucket(), bucket()) is IMPLICIT


def test_bucketless_operations_use_identity_policies_only() -> None:
    create = required("CreateBucket", "nb", None, {}, {})[0]
    assert run(ROOT_B, create, None) is ALLOW
    assert run(None, create, None) is IMPLICIT
    assert run(user(A, CA, "alice", GET_ONLY), create, None) is IMPLICIT
    assert run(user(A, CA, "alice", ALL_S3), create, None) is ALLOW


_IDENTITIES = [None, ROOT_A, ROOT_B, user(A, CA, "alice", ALL_S3), user(B, CB, "bea", ALL_S3),
               role_session(B, CB, (ALL_S3,), GET_ONLY)]  # fmt: skip
_OPS = [get(), put(), list_bucket("x/"), required("DeleteObject", "b", "k", {"versionId": "v"}, {})[0]]
_ALLOW_STATEMENTS = [
    {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    },
    {"Effect": "Allow", "Principal": {"AWS": B}, "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{A}:user/alice"},
        "Action": "s3:*",
        "Resource": "*",
    },
]


@given(
    who=st.sampled_from(_IDENTITIES),
    access=st.sampled_from(_OPS),
    allows=st.lists(st.sampled_from(_ALLOW_STATEMENTS), unique_by=lambda s: json.dumps(s)),
    acl_public=st.booleans(),
)
def test_a_matching_deny_always_wins(
    who: Identity | None, access: Access, allows: list[dict[str, Any]], acl_public: bool
) -> None:
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    }
    acl = canned("public-read-write", CA) if acl_public else private(CA)
    with_deny = bucket(bucket_policy(*allows, deny), acl=acl)
    assert run(who, access, with_deny, obj_acl=acl) is DENY
    without = bucket(bucket_policy(*allows) if allows else None, acl=acl)
    # removing the Deny never removes access that did not exist; the owner's root always has it
    result = run(who, access, without, obj_acl=acl)
    if who is ROOT_A:
        assert result is ALLOW
    assert result is not DENY


@given(who=st.sampled_from(_IDENTITIES), access=st.sampled_from(_OPS))
def test_cross_account_callers_never_pass_without_a_resource_grant(
    who: Identity | None, access: Access
) -> None:
    if who is not None and who.account_id == A:
        return
    assert run(who, access, bucket()) is IMPLICIT


_DENY_STATEMENTS = [
    {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/secret/*"},
    {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/*",
        "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "secret"}},
    },
]


@given(
    who=st.sampled_from([*_IDENTITIES, root(A, CA)]),
    access=st.sampled_from([*_OPS, get("secret/x"), required("GetBucketPolicy", "b", None, {}, {})[0]]),
    statements=st.lists(
        st.sampled_from(_ALLOW_STATEMENTS + _DENY_STATEMENTS), unique_by=lambda s: json.dumps(s)
    ),
)
def test_the_owner_short_cut_agrees_with_decide(
    who: Identity | None, access: Access, statements: list[dict[str, Any]]
) -> None:
    """owner_allowed (authorization's short cut, no keys gathered) answers True only where decide
    allows whatever the condition keys and the object's tags are."""
    target = bucket(bucket_policy(*statements) if statements else None)
    if not owner_allowed(who, access.action, target):
        return
    for keys in ({}, {"s3:existingobjecttag/class": ("secret",)}):
        assert decide(who, access, target, keys) is ALLOW


def test_the_owner_short_cut_applies_to_the_owner_root_only() -> None:
    plain = bucket()
    assert owner_allowed(ROOT_A, get().action, plain)
    assert not owner_allowed(ROOT_B, get().action, plain)
    assert not owner_allowed(user(A, CA, "alice", ALL_S3), get().action, plain)
    assert not owner_allowed(None, get().action, plain)
    denied = bucket(bucket_policy(_DENY_STATEMENTS[0]))
    assert owner_allowed(ROOT_A, get().action, denied)
    assert not owner_allowed(ROOT_A, put().action, denied)
