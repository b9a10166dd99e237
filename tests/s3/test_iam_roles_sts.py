"""Roles, groups and STS (GetCallerIdentity, GetSessionToken, AssumeRole) end to end: temporary
credentials authenticate S3/STS/IAM requests, expire, and stop when their source is revoked."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from iamutil import ALLOW_IAM_ALL, allow, authenticated, client, name, policy, trust

pytestmark = pytest.mark.auth
ADMIN = "000000000000"


@pytest.fixture(scope="module")
def iam(server):
    return client("iam", server.endpoint, server.access_key, server.secret_key)


@pytest.fixture(scope="module")
def sts(server):
    return client("sts", server.endpoint, server.access_key, server.secret_key)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def _role(iam, trust_doc: str, **kwargs) -> str:
    role = name("role")
    return iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust_doc, **kwargs)["Role"]["Arn"]


def _temp(server, service: str, creds: dict, **config):
    return client(
        service,
        server.endpoint,
        creds["AccessKeyId"],
        creds["SecretAccessKey"],
        creds["SessionToken"],
        **config,
    )


def _user(iam, server, *documents: str):
    user = name()
    iam.create_user(UserName=user)
    for i, document in enumerate(documents):
        iam.put_user_policy(UserName=user, PolicyName=f"p{i}", PolicyDocument=document)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return user, key


# -- roles ------------------------------------------------------------------------------------


def test_role_crud(iam):
    role = name("role")
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ADMIN}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    created = iam.create_role(
        RoleName=role, AssumeRolePolicyDocument=json.dumps(document), MaxSessionDuration=7200, Description="d"
    )["Role"]
    assert created["RoleId"].startswith("AROA")
    assert created["Arn"] == f"arn:aws:iam::{ADMIN}:role/{role}"
    got = iam.get_role(RoleName=role)["Role"]
    assert got["AssumeRolePolicyDocument"] == document
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "d"
    everyone = iam.get_paginator("list_roles").paginate()  # other tests' roles too: maybe several pages
    assert role in [r["RoleName"] for page in everyone for r in page["Roles"]]
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(document))
    assert _code(exc) == ("EntityAlreadyExists", 409)
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=json.dumps(ALLOW_IAM_ALL))
    assert iam.get_role_policy(RoleName=role, PolicyName="p")["PolicyDocument"] == ALLOW_IAM_ALL
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=role)
    assert _code(exc) == ("DeleteConflict", 409)
    iam.delete_role_policy(RoleName=role, PolicyName="p")
    iam.delete_role(RoleName=role)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=role)
    assert _code(exc) == ("NoSuchEntity", 404)


def test_trust_policy_needs_principal(iam):
    bad = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    )
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=name("role"), AssumeRolePolicyDocument=bad)
    assert _code(exc) == ("MalformedPolicyDocument", 400)


def test_max_session_duration_range(iam):
    with pytest.raises(ClientError) as exc:
        iam.create_role(
            RoleName=name("role"), AssumeRolePolicyDocument=trust(ADMIN), MaxSessionDuration=50000
        )
    assert _code(exc) == ("ValidationError", 400)


# -- groups -----------------------------------------------------------------------------------


def test_group_membership_grants_group_policies(iam, server):
    group = name("group")
    created = iam.create_group(GroupName=group)["Group"]
    assert created["GroupId"].startswith("AGPA")
    user, key = _user(iam, server)
    mine = client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError):
        mine.list_users()
    iam.put_group_policy(GroupName=group, PolicyName="list", PolicyDocument=policy(allow("iam:ListUsers")))
    iam.add_user_to_group(GroupName=group, UserName=user)
    got = iam.get_group(GroupName=group)
    assert [u["UserName"] for u in got["Users"]] == [user]
    mine.list_users()
    with pytest.raises(ClientError) as exc:
        iam.delete_group(GroupName=group)
    assert _code(exc) == ("DeleteConflict", 409)
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=user)  # still a member
    assert _code(exc) == ("DeleteConflict", 409)
    iam.remove_user_from_group(GroupName=group, UserName=user)
    with pytest.raises(ClientError) as exc:
        mine.list_users()
    assert _code(exc) == ("AccessDenied", 403)
    iam.delete_group_policy(GroupName=group, PolicyName="list")
    iam.delete_group(GroupName=group)
    with pytest.raises(ClientError) as exc:
        iam.get_group(GroupName=group)
    assert _code(exc) == ("NoSuchEntity", 404)


def test_group_errors(iam):
    group = name("group")
    iam.create_group(GroupName=group)
    with pytest.raises(ClientError) as exc:
        iam.create_group(GroupName=group)
    assert _code(exc) == ("EntityAlreadyExists", 409)
    with pytest.raises(ClientError) as exc:
        iam.add_user_to_group(GroupName=group, UserName=name())
    assert _code(exc) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as exc:
        iam.add_user_to_group(GroupName=name("group"), UserName=name())
    assert _code(exc) == ("NoSuchEntity", 404)


# -- STS ----------------------------------------------------------------------------------------


def test_get_caller_identity_root(sts):
    me = sts.get_caller_identity()
    assert me == {**me, "Account": ADMIN, "Arn": f"arn:aws:iam::{ADMIN}:root", "UserId": ADMIN}


def test_assume_role_as_root_and_use_credentials(iam, sts, server):
    arn = _role(iam, trust(f"arn:aws:iam::{ADMIN}:root"))
    out = sts.assume_role(RoleArn=arn, RoleSessionName="build-42")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert (
        out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ADMIN}:assumed-role/{arn.rsplit('/', 1)[1]}/build-42"
    )
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":build-42")
    lifetime = creds["Expiration"].timestamp() - time.time()
    assert 3500 < lifetime <= 3600
    me = _temp(server, "sts", creds).get_caller_identity()
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"]
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    authenticated(_temp(server, "s3", creds).list_buckets)  # authenticated and answered


def test_assumed_role_gets_role_policies_and_session_policy(iam, sts, server):
    arn = _role(iam, trust(ADMIN))
    role = arn.rsplit("/", 1)[1]
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    as_role = _temp(server, "iam", creds)
    with pytest.raises(ClientError) as exc:
        as_role.list_users()
    assert _code(exc) == ("AccessDenied", 403)
    iam.put_role_policy(RoleName=role, PolicyName="all", PolicyDocument=json.dumps(ALLOW_IAM_ALL))
    as_role.list_users()
    as_role.list_roles()
    narrowed = sts.assume_role(RoleArn=arn, RoleSessionName="narrow", Policy=policy(allow("iam:ListUsers")))[
        "Credentials"
    ]
    narrow = _temp(server, "iam", narrowed)
    narrow.list_users()
    with pytest.raises(ClientError) as exc:
        narrow.list_roles()
    assert _code(exc) == ("AccessDenied", 403)


def test_user_needs_identity_policy_to_assume_role(iam, server):
    arn = _role(iam, trust(f"arn:aws:iam::{ADMIN}:root"))
    user, key = _user(iam, server)
    user_sts = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        user_sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    assert _code(exc) == ("AccessDenied", 403)
    iam.put_user_policy(
        UserName=user, PolicyName="assume", PolicyDocument=policy(allow("sts:AssumeRole", arn))
    )
    creds = user_sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    assert _temp(server, "sts", creds).get_caller_identity()["Arn"].endswith(f"/{arn.rsplit('/', 1)[1]}/s1")


def test_trust_policy_not_naming_caller_denies(iam, sts, server):
    arn = _role(iam, trust("arn:aws:iam::123456789012:root"))
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    assert _code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=f"arn:aws:iam::{ADMIN}:role/{name('none')}", RoleSessionName="s1")
    assert _code(exc) == ("AccessDenied", 403)


def test_assume_role_validation(iam, sts):
    arn = _role(iam, trust(ADMIN))
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)  # role max is 3600
    assert _code(exc) == ("ValidationError", 400)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn="not-an-arn-at-all-really", RoleSessionName="s1")
    assert _code(exc) == ("ValidationError", 400)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", Policy='{"Statement": "nope"}')
    assert _code(exc) == ("MalformedPolicyDocument", 400)


def test_get_session_token_for_user(iam, server):
    user, key = _user(iam, server)
    user_sts = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    creds = user_sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert 800 < creds["Expiration"].timestamp() - time.time() <= 900
    me = _temp(server, "sts", creds).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ADMIN}:user/{user}"
    with pytest.raises(ClientError) as exc:
        _temp(server, "sts", creds).get_session_token()
    assert _code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        user_sts.get_session_token(DurationSeconds=129601)
    assert _code(exc) == ("ValidationError", 400)


def test_session_stops_when_source_key_is_disabled(iam, server):
    arn = _role(iam, trust(ADMIN))
    user, key = _user(iam, server, policy(allow("sts:AssumeRole")))
    user_sts = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    role_creds = user_sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    session_creds = user_sts.get_session_token()["Credentials"]
    for creds in (role_creds, session_creds):
        authenticated(_temp(server, "s3", creds).list_buckets)
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    for creds in (role_creds, session_creds):
        with pytest.raises(ClientError) as exc:
            _temp(server, "s3", creds).list_buckets()
        assert _code(exc) == ("InvalidToken", 400)
        with pytest.raises(ClientError) as exc:
            _temp(server, "sts", creds).get_caller_identity()
        assert _code(exc) == ("InvalidClientTokenId", 403)


def test_session_stops_when_role_is_deleted(iam, sts, server):
    arn = _role(iam, trust(ADMIN))
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    authenticated(_temp(server, "s3", creds).list_buckets)
    iam.delete_role(RoleName=arn.rsplit("/", 1)[1])
    with pytest.raises(ClientError) as exc:
        _temp(server, "s3", creds).list_buckets()
    assert _code(exc) == ("InvalidToken", 400)


def test_bad_tokens(iam, sts, server):
    arn = _role(iam, trust(ADMIN))
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    head, payload, signature = creds["SessionToken"].split(".")
    forged = {**creds, "SessionToken": f"{head}.{payload}.{signature[:-4]}AAAA"}
    with pytest.raises(ClientError) as exc:
        _temp(server, "s3", forged).list_buckets()
    assert _code(exc) == ("InvalidToken", 400)
    with pytest.raises(ClientError) as exc:
        _temp(server, "sts", {**creds, "SessionToken": "garbage"}).get_caller_identity()
    assert _code(exc) == ("InvalidClientTokenId", 403)
    no_token = client("s3", server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        no_token.list_buckets()
    assert _code(exc) == ("InvalidAccessKeyId", 403)
    other = sts.assume_role(RoleArn=arn, RoleSessionName="t1")["Credentials"]
    swapped = {**creds, "SessionToken": other["SessionToken"]}  # a valid token of another key
    with pytest.raises(ClientError) as exc:
        _temp(server, "s3", swapped).list_buckets()
    assert _code(exc) == ("InvalidToken", 400)


def test_presigned_url_with_session_token(iam, sts, server):
    import urllib.request

    arn = _role(iam, trust(ADMIN))
    iam.put_role_policy(
        RoleName=arn.rsplit("/", 1)[1], PolicyName="list", PolicyDocument=policy(allow("s3:ListAllMyBuckets"))
    )
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    url = _temp(server, "s3", creds).generate_presigned_url("list_buckets", ExpiresIn=60)
    assert "X-Amz-Security-Token" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200


def test_temporary_credentials_expire(start_server, monkeypatch):
    """PAILS_STS_MIN_DURATION_SECONDS is test-only: it lowers AWS's 900 s minimum."""
    monkeypatch.setenv("PAILS_STS_MIN_DURATION_SECONDS", "1")
    srv = start_server()
    admin_iam = client("iam", srv.endpoint, srv.access_key, srv.secret_key)
    admin_sts = client("sts", srv.endpoint, srv.access_key, srv.secret_key, parameter_validation=False)
    arn = _role(admin_iam, trust(ADMIN))
    creds = admin_sts.assume_role(RoleArn=arn, RoleSessionName="short", DurationSeconds=2)["Credentials"]
    _temp(srv, "sts", creds).get_caller_identity()
    deadline = creds["Expiration"].timestamp() + 0.5
    while time.time() < deadline:
        time.sleep(0.25)
    with pytest.raises(ClientError) as exc:
        _temp(srv, "s3", creds).list_buckets()
    assert _code(exc) == ("ExpiredToken", 400)
    with pytest.raises(ClientError) as exc:
        _temp(srv, "sts", creds).get_caller_identity()
    assert _code(exc)[0] == "ExpiredToken"


def test_sigv2_with_session_token(iam, sts, server):
    import urllib.request

    arn = _role(iam, trust(ADMIN))
    iam.put_role_policy(
        RoleName=arn.rsplit("/", 1)[1], PolicyName="list", PolicyDocument=policy(allow("s3:ListAllMyBuckets"))
    )
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="v2")["Credentials"]
    v2 = _temp(server, "s3", creds, signature_version="s3")
    v2.list_buckets()
    url = v2.generate_presigned_url("list_buckets", ExpiresIn=60)
    assert "x-amz-security-token" in url and "Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
    forged = _temp(
        server, "s3", {**creds, "SessionToken": creds["SessionToken"][:-3] + "AAA"}, signature_version="s3"
    )
    with pytest.raises(ClientError) as exc:
        forged.list_buckets()
    assert _code(exc) == ("InvalidToken", 400)


def test_role_chaining_keeps_the_source_key(iam, sts, server):
    first = _role(iam, trust(ADMIN))
    second = _role(iam, trust(ADMIN))
    creds = sts.assume_role(RoleArn=first, RoleSessionName="one")["Credentials"]
    chained_sts = _temp(server, "sts", creds)
    with pytest.raises(ClientError) as exc:  # the first role's policies do not allow it yet
        chained_sts.assume_role(RoleArn=second, RoleSessionName="two")
    assert _code(exc) == ("AccessDenied", 403)
    iam.put_role_policy(
        RoleName=first.rsplit("/", 1)[1],
        PolicyName="chain",
        PolicyDocument=policy(allow("sts:AssumeRole", second)),
    )
    with pytest.raises(ClientError) as exc:
        chained_sts.assume_role(RoleArn=second, RoleSessionName="two", DurationSeconds=7200)
    assert _code(exc) == ("ValidationError", 400)  # chained sessions last an hour at most
    chained = chained_sts.assume_role(RoleArn=second, RoleSessionName="two")["Credentials"]
    me = _temp(server, "sts", chained).get_caller_identity()
    assert me["Arn"].endswith(f"{second.rsplit('/', 1)[1]}/two")


def test_presigned_get_caller_identity(server):
    """The query APIs also take the parameters and a presigned signature in the query string (boto3
    presigns the operation's method, POST, with an empty body)."""
    import urllib.request

    sts = client("sts", server.endpoint, server.access_key, server.secret_key)
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60)
    assert "Action=GetCallerIdentity" in url
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=10) as response:
        body = response.read().decode()
    assert f"<Arn>arn:aws:iam::{ADMIN}:root</Arn>" in body
    assert "https://sts.amazonaws.com/doc/2011-06-15/" in body
