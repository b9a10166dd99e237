"""Accounts (tenants) and the tools around IAM: `pails admin ...` end to end, the AWS CLI's iam and
sts commands, cross-account roles, isolation between accounts, and secrets encrypted at rest."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT, unique_bucket_name
from iamutil import allow, authenticated, client, name, policy, trust

pytestmark = pytest.mark.auth
ADMIN = "000000000000"
AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def pails(
    server, *args: str, access_key: str | None = None, secret_key: str | None = None, stdin: str | None = None
):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "AWS_ACCESS_KEY_ID": access_key or server.access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key or server.secret_key,
        "AWS_DEFAULT_REGION": server.region,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "200",
    }
    cmd = [sys.executable, "-m", "pails", "admin", *args, "--endpoint", server.endpoint]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, input=stdin)


@pytest.fixture(scope="module")
def tenant(server):
    """A second account, made with `pails admin account create NAME --json`."""
    proc = pails(server, "account", "create", name("acct"), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_account_create_json(tenant, server):
    assert len(tenant["account_id"]) == 12 and tenant["account_id"].isdigit()
    assert tenant["account_id"] != ADMIN
    assert len(tenant["canonical_id"]) == 64
    sts = client("sts", server.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
    me = sts.get_caller_identity()
    assert me["Account"] == tenant["account_id"]
    assert me["Arn"] == f"arn:aws:iam::{tenant['account_id']}:root"
    s3 = client("s3", server.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
    owner = s3.list_buckets()["Owner"]
    assert owner == {"ID": tenant["canonical_id"], "DisplayName": tenant["name"]}


def test_account_list_and_duplicates(tenant, server):
    listed = pails(server, "account", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    accounts = {a["account_id"]: a for a in json.loads(listed.stdout)}
    assert accounts[tenant["account_id"]]["name"] == tenant["name"]
    assert ADMIN in accounts
    again = pails(server, "account", "create", tenant["name"].upper(), "--json")
    assert again.returncode == 1
    assert "EntityAlreadyExists" in again.stderr or "already exists" in again.stderr
    table = pails(server, "account", "list")
    assert table.returncode == 0 and tenant["account_id"] in table.stdout


def test_create_account_helper(server):
    """tests/s3/iamutil.create_account: the admin API without the CLI (for other test modules)."""
    from iamutil import create_account

    made = create_account(server.endpoint, server.access_key, server.secret_key)
    me = client(
        "sts", server.endpoint, made["access_key_id"], made["secret_access_key"]
    ).get_caller_identity()
    assert me["Account"] == made["account_id"]


def test_only_the_admin_account_manages_accounts(tenant, server):
    proc = pails(
        server,
        "account",
        "create",
        name("acct"),
        access_key=tenant["access_key_id"],
        secret_key=tenant["secret_access_key"],
    )
    assert proc.returncode == 1 and "403" in proc.stderr


def test_buckets_owned_by_the_account(tenant, server):
    s3 = client("s3", server.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
    bucket = unique_bucket_name()
    s3.create_bucket(Bucket=bucket)
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=tenant["account_id"])
        with pytest.raises(ClientError) as exc:
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=ADMIN)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        s3.delete_bucket(Bucket=bucket)


def test_accounts_are_isolated(tenant, server):
    admin_iam = client("iam", server.endpoint, server.access_key, server.secret_key)
    mine = client("iam", server.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
    shared = name()
    admin_iam.create_user(UserName=shared)
    with pytest.raises(ClientError) as exc:
        mine.get_user(UserName=shared)
    assert _code(exc) == ("NoSuchEntity", 404)
    created = mine.create_user(UserName=shared)["User"]  # names are per account
    assert created["Arn"] == f"arn:aws:iam::{tenant['account_id']}:user/{shared}"
    assert shared in [u["UserName"] for u in mine.list_users()["Users"]]
    assert all(u["Arn"].split(":")[4] == tenant["account_id"] for u in mine.list_users()["Users"])
    key = mine.create_access_key(UserName=shared)["AccessKey"]
    me = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    assert me["Account"] == tenant["account_id"]


def test_account_root_manages_its_own_keys(server):
    from iamutil import create_account

    made = create_account(server.endpoint, server.access_key, server.secret_key)
    root_iam = client("iam", server.endpoint, made["access_key_id"], made["secret_access_key"])
    listed = root_iam.list_access_keys()["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [made["access_key_id"]]
    second = root_iam.create_access_key()["AccessKey"]
    assert "UserName" not in second
    me = client(
        "sts", server.endpoint, second["AccessKeyId"], second["SecretAccessKey"]
    ).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{made['account_id']}:root"
    with pytest.raises(ClientError) as exc:
        root_iam.create_access_key()
    assert _code(exc) == ("LimitExceeded", 409)
    root_iam.delete_access_key(AccessKeyId=made["access_key_id"])
    with pytest.raises(ClientError) as exc:
        root_iam.list_access_keys()
    assert _code(exc) == ("InvalidClientTokenId", 403)
    second_iam = client("iam", server.endpoint, second["AccessKeyId"], second["SecretAccessKey"])
    assert [k["AccessKeyId"] for k in second_iam.list_access_keys()["AccessKeyMetadata"]] == [
        second["AccessKeyId"]
    ]


def test_cross_account_assume_role(tenant, server):
    mine = client("iam", server.endpoint, tenant["access_key_id"], tenant["secret_access_key"])
    role = name("role")
    arn = mine.create_role(RoleName=role, AssumeRolePolicyDocument=trust(ADMIN))["Role"]["Arn"]
    admin_sts = client("sts", server.endpoint, server.access_key, server.secret_key)
    creds = admin_sts.assume_role(RoleArn=arn, RoleSessionName="cross")["Credentials"]
    temp = client(
        "sts", server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    ).get_caller_identity()
    assert temp["Account"] == tenant["account_id"]
    assert temp["Arn"] == f"arn:aws:sts::{tenant['account_id']}:assumed-role/{role}/cross"

    admin_iam = client("iam", server.endpoint, server.access_key, server.secret_key)
    user = name()
    admin_iam.create_user(UserName=user)
    key = admin_iam.create_access_key(UserName=user)["AccessKey"]
    user_sts = client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:  # the trust delegates to the admin account: no policy, no entry
        user_sts.assume_role(RoleArn=arn, RoleSessionName="cross")
    assert _code(exc) == ("AccessDenied", 403)
    admin_iam.put_user_policy(
        UserName=user, PolicyName="a", PolicyDocument=policy(allow("sts:AssumeRole", arn))
    )
    user_sts.assume_role(RoleArn=arn, RoleSessionName="cross")

    other_role = name("role")
    other_arn = mine.create_role(RoleName=other_role, AssumeRolePolicyDocument=trust("111111111111"))["Role"][
        "Arn"
    ]
    with pytest.raises(ClientError) as exc:
        user_sts.assume_role(RoleArn=other_arn, RoleSessionName="cross")
    assert _code(exc) == ("AccessDenied", 403)


def test_cli_users_keys_policies(server, tmp_path):
    user = name()
    created = pails(server, "user", "create", user, "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)[0]["UserName"] == user
    listed = pails(server, "user", "list", "--json")
    assert user in [u["UserName"] for u in json.loads(listed.stdout)]
    table = pails(server, "user", "list")
    assert user in table.stdout

    key = json.loads(pails(server, "key", "create", "--user", user, "--json").stdout)[0]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    s3 = client("s3", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    authenticated(s3.list_buckets)  # a user without policies: AccessDenied, after authentication
    assert pails(server, "key", "disable", key["AccessKeyId"], "--user", user).returncode == 0
    with pytest.raises(ClientError) as exc:
        s3.list_buckets()
    assert _code(exc) == ("InvalidAccessKeyId", 403)
    keys = json.loads(pails(server, "key", "list", "--user", user, "--json").stdout)
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key["AccessKeyId"], "Inactive")]
    assert pails(server, "key", "enable", key["AccessKeyId"], "--user", user).returncode == 0
    authenticated(s3.list_buckets)

    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}],
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document))
    assert pails(server, "policy", "put", user, "list-users", str(path)).returncode == 0
    got = pails(server, "policy", "get", user, "list-users")
    assert json.loads(got.stdout) == document
    assert json.loads(pails(server, "policy", "list", user, "--json").stdout) == [
        {"PolicyName": "list-users"}
    ]
    client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).list_users()
    path.write_text("{not json")
    bad = pails(server, "policy", "put", user, "broken", str(path))
    assert bad.returncode == 1 and "MalformedPolicyDocument" in bad.stderr

    conflict = pails(server, "user", "delete", user)
    assert conflict.returncode == 1 and "DeleteConflict" in conflict.stderr
    assert pails(server, "policy", "delete", user, "list-users").returncode == 0
    assert pails(server, "key", "delete", key["AccessKeyId"], "--user", user).returncode == 0
    assert pails(server, "user", "delete", user).returncode == 0
    missing = pails(server, "user", "delete", user)
    assert missing.returncode == 1 and "NoSuchEntity" in missing.stderr


def test_cli_needs_credentials(server):
    proc = subprocess.run(
        [sys.executable, "-m", "pails", "admin", "user", "list", "--endpoint", server.endpoint],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "AWS_ACCESS_KEY_ID" in proc.stderr


@pytest.fixture
def aws(server, tmp_path):
    if not AWS:
        pytest.skip("aws CLI not installed")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_DEFAULT_REGION": server.region,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }

    def run(*args: str, **extra_env: str) -> dict:
        cmd = [AWS, "--endpoint-url", server.endpoint, "--output", "json", *args]
        proc = subprocess.run(cmd, env={**env, **extra_env}, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    return run


def test_aws_cli_iam_and_sts(aws):
    user = name()
    assert aws("iam", "create-user", "--user-name", user)["User"]["UserName"] == user
    key = aws("iam", "create-access-key", "--user-name", user)["AccessKey"]
    assert key["UserName"] == user and key["AccessKeyId"].startswith("AKIA")
    role = name("role")
    arn = aws("iam", "create-role", "--role-name", role, "--assume-role-policy-document", trust(ADMIN))[
        "Role"
    ]["Arn"]
    list_all = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}'
    aws("iam", "put-role-policy", "--role-name", role, "--policy-name", "list", "--policy-document", list_all)
    out = aws("sts", "assume-role", "--role-arn", arn, "--role-session-name", "cli")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    me = aws(
        "sts",
        "get-caller-identity",
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_SESSION_TOKEN=creds["SessionToken"],
    )
    assert me["Arn"] == f"arn:aws:sts::{ADMIN}:assumed-role/{role}/cli"
    listed = aws(
        "s3api",
        "list-buckets",
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_SESSION_TOKEN=creds["SessionToken"],
    )
    assert "Buckets" in listed


def _stored_bytes(server) -> bytes:
    """Everything the metadata store holds about access keys, as raw bytes."""
    if "--metadata" not in server.args:
        assert server.data_dir is not None
        return b"".join(p.read_bytes() for p in server.data_dir.glob("meta.db*"))
    dsn = server.args[server.args.index("--metadata") + 1]

    async def dump() -> bytes:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT t::text AS row, secret FROM iam_access_keys t")
        finally:
            await conn.close()
        return b"".join(r["row"].encode() + bytes(r["secret"]) for r in rows)

    return asyncio.run(dump())


def test_secrets_are_encrypted_at_rest(server):
    admin_iam = client("iam", server.endpoint, server.access_key, server.secret_key)
    user = name()
    admin_iam.create_user(UserName=user)
    key = admin_iam.create_access_key(UserName=user)["AccessKey"]
    stored = _stored_bytes(server)
    assert key["AccessKeyId"].encode() in stored  # the rows are there...
    assert key["SecretAccessKey"].encode() not in stored  # ...but not the secret
    server_log = server.stderr_text()
    assert key["SecretAccessKey"] not in server_log


def test_server_key_file_is_private(server):
    if server.data_dir is None:
        pytest.skip("external server")
    path = server.data_dir / "server-key"
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
