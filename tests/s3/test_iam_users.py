"""IAM users, access keys and inline user policies through boto3's iam client, and authentication
with the keys they make (a real server, both metadata backends)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from iamutil import ALLOW_IAM_ALL, allow, authenticated, client, name, policy

pytestmark = pytest.mark.auth


@pytest.fixture(scope="module")
def iam(server):  # the admin account's root
    return client("iam", server.endpoint, server.access_key, server.secret_key)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def _user_with_key(iam, **policy_kwargs):
    user = name()
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    if policy_kwargs:
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy_kwargs["document"])
    return user, key


def test_create_get_list_delete_user(iam):
    user = name()
    created = iam.create_user(UserName=user, Path="/team/")["User"]
    assert created["UserName"] == user
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    assert created["Arn"] == f"arn:aws:iam::000000000000:user/team/{user}"
    assert created["Path"] == "/team/"
    got = iam.get_user(UserName=user)["User"]
    assert got["UserId"] == created["UserId"]
    everyone = iam.get_paginator("list_users").paginate()  # other tests' users too: several pages
    assert user in [u["UserName"] for page in everyone for u in page["Users"]]
    assert user in [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]]
    assert user not in [u["UserName"] for u in iam.list_users(PathPrefix="/other/")["Users"]]
    iam.delete_user(UserName=user)
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName=user)
    assert _code(exc) == ("NoSuchEntity", 404)


def test_user_names_unique_regardless_of_case(iam):
    user = name()
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName=user.upper())
    assert _code(exc) == ("EntityAlreadyExists", 409)


def test_invalid_user_name_is_validation_error(iam):
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="bad name!")
    assert _code(exc) == ("ValidationError", 400)


def test_delete_user_with_keys_or_policies_conflicts(iam):
    user, key = _user_with_key(iam)
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=user)
    assert _code(exc) == ("DeleteConflict", 409)
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy(allow("s3:*")))
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=user)
    assert _code(exc) == ("DeleteConflict", 409)
    iam.delete_user_policy(UserName=user, PolicyName="p")
    iam.delete_user(UserName=user)


def test_access_keys_lifecycle(iam, server):
    user = name()
    iam.create_user(UserName=user)
    first = iam.create_access_key(UserName=user)["AccessKey"]
    assert first["AccessKeyId"].startswith("AKIA") and len(first["AccessKeyId"]) == 20
    assert len(first["SecretAccessKey"]) == 40 and first["Status"] == "Active"
    second = iam.create_access_key(UserName=user)["AccessKey"]
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName=user)
    assert _code(exc) == ("LimitExceeded", 409)
    listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in listed} == {first["AccessKeyId"], second["AccessKeyId"]}
    assert all("SecretAccessKey" not in k for k in listed)
    iam.update_access_key(UserName=user, AccessKeyId=first["AccessKeyId"], Status="Inactive")
    statuses = {
        k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    }
    assert statuses == {first["AccessKeyId"]: "Inactive", second["AccessKeyId"]: "Active"}
    with pytest.raises(ClientError) as exc:
        iam.update_access_key(UserName=user, AccessKeyId=first["AccessKeyId"], Status="Sleeping")
    assert _code(exc) == ("ValidationError", 400)
    iam.delete_access_key(UserName=user, AccessKeyId=first["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        iam.delete_access_key(UserName=user, AccessKeyId=first["AccessKeyId"])
    assert _code(exc) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName=name())
    assert _code(exc) == ("NoSuchEntity", 404)


def test_user_key_authenticates_s3_and_sts(iam, server):
    user, key = _user_with_key(iam)
    sts = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    me = sts.get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::000000000000:user/{user}"
    assert me["Account"] == "000000000000"
    assert me["UserId"].startswith("AIDA")
    s3 = client("s3", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    authenticated(s3.list_buckets)  # answered (authorization is the authorizer's business)
    wrong = client("s3", server.endpoint, key["AccessKeyId"], "x" * 40)
    with pytest.raises(ClientError) as exc:
        wrong.list_buckets()
    assert _code(exc) == ("SignatureDoesNotMatch", 403)


def test_inactive_and_deleted_keys_stop_at_once(iam, server):
    user, key = _user_with_key(iam)
    s3 = client("s3", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    authenticated(s3.list_buckets)
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        s3.list_buckets()
    assert _code(exc) == ("InvalidAccessKeyId", 403)
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    authenticated(s3.list_buckets)
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        s3.list_buckets()
    assert _code(exc) == ("InvalidAccessKeyId", 403)
    sts = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    assert _code(exc) == ("InvalidClientTokenId", 403)


def test_user_policies_put_get_list_delete(iam):
    user = name()
    iam.create_user(UserName=user)
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps(document))
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(ALLOW_IAM_ALL))
    got = iam.get_user_policy(UserName=user, PolicyName="read")
    assert got["PolicyDocument"] == document and got["UserName"] == user
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["all", "read"]
    iam.delete_user_policy(UserName=user, PolicyName="read")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["all"]
    with pytest.raises(ClientError) as exc:
        iam.get_user_policy(UserName=user, PolicyName="read")
    assert _code(exc) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as exc:
        iam.delete_user_policy(UserName=user, PolicyName="read")
    assert _code(exc) == ("NoSuchEntity", 404)


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}
        ),
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    ],
)
def test_malformed_policy_is_rejected_and_changes_nothing(iam, document):
    user = name()
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName=user, PolicyName="bad", PolicyDocument=document)
    assert _code(exc) == ("MalformedPolicyDocument", 400)
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == []


def test_user_without_policy_is_denied_iam(iam, server):
    _, key = _user_with_key(iam)
    mine = client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        mine.create_user(UserName=name())
    code, status = _code(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert "iam:CreateUser" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        mine.list_users()
    assert _code(exc) == ("AccessDenied", 403)


def test_user_allowed_iam_star_can_manage(iam, server):
    _, key = _user_with_key(iam, document=json.dumps(ALLOW_IAM_ALL))
    mine = client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    other = name()
    mine.create_user(UserName=other)
    assert mine.get_user(UserName=other)["User"]["UserName"] == other
    mine.delete_user(UserName=other)


def test_policy_scoped_to_resource_and_action(iam, server):
    user = name()
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(
        UserName=user,
        PolicyName="self",
        PolicyDocument=policy(
            allow(["iam:GetUser", "iam:ListAccessKeys"], "arn:aws:iam::000000000000:user/${aws:username}")
        ),
    )
    mine = client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    assert mine.get_user()["User"]["UserName"] == user  # no UserName: the caller
    assert len(mine.list_access_keys()["AccessKeyMetadata"]) == 1
    with pytest.raises(ClientError) as exc:
        mine.get_user(UserName="somebody-else")
    assert _code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        mine.delete_access_key(AccessKeyId=key["AccessKeyId"])
    assert _code(exc) == ("AccessDenied", 403)


def test_explicit_deny_wins(iam, server):
    user = name()
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(ALLOW_IAM_ALL))
    iam.put_user_policy(
        UserName=user,
        PolicyName="no-delete",
        PolicyDocument=policy({"Effect": "Deny", "Action": "iam:DeleteUser", "Resource": "*"}),
    )
    mine = client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    victim = name()
    mine.create_user(UserName=victim)
    with pytest.raises(ClientError) as exc:
        mine.delete_user(UserName=victim)
    assert _code(exc) == ("AccessDenied", 403)


def test_policy_change_applies_at_once(iam, server):
    user, key = _user_with_key(iam)
    mine = client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError):
        mine.list_users()
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(ALLOW_IAM_ALL))
    mine.list_users()
    iam.delete_user_policy(UserName=user, PolicyName="all")
    with pytest.raises(ClientError) as exc:
        mine.list_users()
    assert _code(exc) == ("AccessDenied", 403)


def test_root_keys_of_account(iam, server):
    """The root user manages its own keys with no UserName; GetUser describes the root."""
    me = iam.get_user()["User"]
    assert me["Arn"] == "arn:aws:iam::000000000000:root"
    assert me["UserId"] == "000000000000"


def test_unknown_action_and_bad_signature(iam, server):
    other = client("iam", server.endpoint, server.access_key, server.secret_key)
    other.meta.events.register_first(
        "before-sign.iam.ListUsers", lambda request, **kw: request.data.update({"Action": "Frobnicate"})
    )
    with pytest.raises(ClientError) as exc:
        other.list_users()
    assert _code(exc) == ("InvalidAction", 400)
    bad = client("iam", server.endpoint, server.access_key, "wrong-secret")
    with pytest.raises(ClientError) as exc:
        bad.list_users()
    assert _code(exc) == ("SignatureDoesNotMatch", 403)
    unknown = client("iam", server.endpoint, "AKIAUNKNOWNUNKNOWN00", "x" * 40)
    with pytest.raises(ClientError) as exc:
        unknown.list_users()
    assert _code(exc) == ("InvalidClientTokenId", 403)


def test_lists_are_paged_with_max_items_and_marker(iam):
    path = f"/paged-{name()}/"
    users = sorted(name() for _ in range(7))
    for user in users:
        iam.create_user(UserName=user, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=3)
    assert first["IsTruncated"] is True and first["Marker"]
    assert [u["UserName"] for u in first["Users"]] == users[:3]
    second = iam.list_users(PathPrefix=path, MaxItems=3, Marker=first["Marker"])
    assert [u["UserName"] for u in second["Users"]] == users[3:6] and second["IsTruncated"] is True
    last = iam.list_users(PathPrefix=path, MaxItems=3, Marker=second["Marker"])
    assert [u["UserName"] for u in last["Users"]] == users[6:] and last["IsTruncated"] is False
    assert "Marker" not in last
    pages = iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 2})
    assert [u["UserName"] for page in pages for u in page["Users"]] == users
    for bad in ({"MaxItems": 1001}, {"Marker": "not-a-marker"}):  # (botocore itself refuses 0)
        with pytest.raises(ClientError) as exc:
            iam.list_users(PathPrefix=path, **bad)
        assert _code(exc) == ("ValidationError", 400)
    for user in users:
        iam.delete_user(UserName=user)
