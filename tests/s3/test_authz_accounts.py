"""Authorization across accounts, users and roles (two accounts made through the admin API, IAM
users and roles made with boto3's iam/sts clients): cross-account grants by bucket policy and by
ACL, prefix-scoped users, AssumeRole credentials narrowed by role and session policies, a key
disabled mid-session, ListBuckets per account."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ServerInfo, empty_and_delete_bucket, unique_bucket_name
from iamutil import allow, client, name, policy, trust

pytestmark = pytest.mark.auth


@dataclass
class Account:
    account_id: str
    canonical_id: str
    access_key: str
    secret_key: str
    endpoint: str

    def client(self, service: str = "s3") -> Any:
        return client(service, self.endpoint, self.access_key, self.secret_key)

    def user(
        self, *statements: dict[str, Any], user_name: str | None = None
    ) -> tuple[str, Any, dict[str, str]]:
        """A new IAM user of this account with an inline policy of `statements`: (name, s3, key)."""
        iam = self.client("iam")
        user_name = user_name or name("user")
        iam.create_user(UserName=user_name)
        key = iam.create_access_key(UserName=user_name)["AccessKey"]
        if statements:
            iam.put_user_policy(UserName=user_name, PolicyName="p", PolicyDocument=policy(*statements))
        return user_name, client("s3", self.endpoint, key["AccessKeyId"], key["SecretAccessKey"]), key


def _create_account(server: ServerInfo, label: str) -> Account:
    body = json.dumps({"name": name(label)}).encode()
    response = server.raw.request(
        "POST", "/_pails/admin/accounts", body=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 201, response.describe()
    created = json.loads(response.body)
    return Account(
        created["account_id"],
        created["canonical_id"],
        created["access_key_id"],
        created["secret_access_key"],
        server.endpoint,
    )


@pytest.fixture(scope="module")
def alpha(server: ServerInfo) -> Account:
    return _create_account(server, "alpha")


@pytest.fixture(scope="module")
def beta(server: ServerInfo) -> Account:
    return _create_account(server, "beta")


@pytest.fixture
def alpha_bucket(alpha: Account) -> Any:
    s3 = alpha.client()
    bucket = unique_bucket_name("ab")
    s3.create_bucket(Bucket=bucket)
    yield bucket
    empty_and_delete_bucket(s3, bucket)


def code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    return str(err.value.response["Error"]["Code"])


def test_list_buckets_is_per_account(s3, alpha: Account, beta: Account, alpha_bucket: str) -> None:
    assert alpha_bucket in [b["Name"] for b in alpha.client().list_buckets()["Buckets"]]
    assert alpha_bucket not in [b["Name"] for b in beta.client().list_buckets()["Buckets"]]
    assert alpha_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # the admin's too
    assert beta.client().list_buckets()["Owner"]["ID"] == beta.canonical_id


def test_other_accounts_including_admin_are_strangers(
    s3, alpha: Account, beta: Account, alpha_bucket: str
) -> None:
    alpha.client().put_object(Bucket=alpha_bucket, Key="k", Body=b"v")
    for stranger in (beta.client(), s3):
        assert code(stranger.get_object, Bucket=alpha_bucket, Key="k") == "AccessDenied"
        assert code(stranger.list_objects_v2, Bucket=alpha_bucket) == "AccessDenied"
        assert code(stranger.put_object, Bucket=alpha_bucket, Key="x", Body=b"") == "AccessDenied"
        assert code(stranger.delete_bucket, Bucket=alpha_bucket) == "AccessDenied"
        assert (
            code(stranger.put_bucket_policy, Bucket=alpha_bucket, Policy=policy(allow("s3:*")))
            == "AccessDenied"
        )
    assert code(beta.client().create_bucket, Bucket=alpha_bucket) == "BucketAlreadyExists"


def test_cross_account_grant_by_bucket_policy_needs_both_sides(
    alpha: Account, beta: Account, alpha_bucket: str
) -> None:
    a3 = alpha.client()
    a3.put_object(Bucket=alpha_bucket, Key="shared/doc", Body=b"doc")
    a3.put_bucket_policy(
        Bucket=alpha_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{beta.account_id}:root"},
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{alpha_bucket}/shared/*",
            }
        ),
    )
    assert beta.client().get_object(Bucket=alpha_bucket, Key="shared/doc")["Body"].read() == b"doc"
    _, no_policy, _ = beta.user()
    assert code(no_policy.get_object, Bucket=alpha_bucket, Key="shared/doc") == "AccessDenied"
    _, reader, _ = beta.user(allow("s3:GetObject", f"arn:aws:s3:::{alpha_bucket}/*"))
    assert reader.get_object(Bucket=alpha_bucket, Key="shared/doc")["Body"].read() == b"doc"
    assert code(reader.put_object, Bucket=alpha_bucket, Key="shared/new", Body=b"") == "AccessDenied"
    assert code(reader.get_object, Bucket=alpha_bucket, Key="private") == "AccessDenied"
    # beta writes into alpha's bucket, handing alpha full control of the object
    beta.client().put_object(
        Bucket=alpha_bucket, Key="shared/from-beta", Body=b"b", ACL="bucket-owner-full-control"
    )
    acl = a3.get_object_acl(Bucket=alpha_bucket, Key="shared/from-beta")
    assert acl["Owner"]["ID"] == beta.canonical_id
    assert {"Grantee": {"Type": "CanonicalUser", "ID": alpha.canonical_id}, "Permission": "FULL_CONTROL"} in [
        {
            "Grantee": {k: v for k, v in g["Grantee"].items() if k in ("Type", "ID")},
            "Permission": g["Permission"],
        }
        for g in acl["Grants"]
    ]
    assert a3.get_object(Bucket=alpha_bucket, Key="shared/from-beta")["Body"].read() == b"b"
    # a Deny naming beta's account beats every Allow
    a3.put_bucket_policy(
        Bucket=alpha_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": beta.account_id},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alpha_bucket}/*",
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": beta.account_id},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alpha_bucket}/shared/doc",
            },
        ),
    )
    assert code(beta.client().get_object, Bucket=alpha_bucket, Key="shared/doc") == "AccessDenied"
    assert beta.client().get_object(Bucket=alpha_bucket, Key="shared/from-beta")["Body"].read() == b"b"


def test_cross_account_grant_by_acl(alpha: Account, beta: Account, alpha_bucket: str) -> None:
    a3 = alpha.client()
    a3.put_object(Bucket=alpha_bucket, Key="acl-doc", Body=b"acl")
    assert code(beta.client().get_object, Bucket=alpha_bucket, Key="acl-doc") == "AccessDenied"
    a3.put_object_acl(Bucket=alpha_bucket, Key="acl-doc", GrantRead=f'id="{beta.canonical_id}"')
    assert beta.client().get_object(Bucket=alpha_bucket, Key="acl-doc")["Body"].read() == b"acl"
    _, no_policy, _ = beta.user()
    assert code(no_policy.get_object, Bucket=alpha_bucket, Key="acl-doc") == "AccessDenied"
    _, reader, _ = beta.user(allow("s3:GetObject"))
    assert reader.get_object(Bucket=alpha_bucket, Key="acl-doc")["Body"].read() == b"acl"
    # bucket ACL: READ lists, WRITE writes
    assert code(beta.client().list_objects_v2, Bucket=alpha_bucket) == "AccessDenied"
    a3.put_bucket_acl(
        Bucket=alpha_bucket,
        GrantRead=f'id="{beta.canonical_id}"',
        GrantWrite=f'id="{beta.canonical_id}"',
        GrantFullControl=f'id="{alpha.canonical_id}"',
    )
    assert [o["Key"] for o in beta.client().list_objects_v2(Bucket=alpha_bucket)["Contents"]] == ["acl-doc"]
    beta.client().put_object(Bucket=alpha_bucket, Key="dropped", Body=b"d")


def test_prefix_scoped_users(alpha: Account, alpha_bucket: str) -> None:
    home = f"arn:aws:s3:::{alpha_bucket}/home/${{aws:username}}/*"
    statements = (
        allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], home),
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{alpha_bucket}",
            "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}},
        },
    )
    alice, as_alice, _ = alpha.user(*statements)
    bob, as_bob, _ = alpha.user(*statements)
    as_alice.put_object(Bucket=alpha_bucket, Key=f"home/{alice}/notes.txt", Body=b"mine")
    as_bob.put_object(Bucket=alpha_bucket, Key=f"home/{bob}/notes.txt", Body=b"his")
    assert as_alice.get_object(Bucket=alpha_bucket, Key=f"home/{alice}/notes.txt")["Body"].read() == b"mine"
    assert code(as_alice.get_object, Bucket=alpha_bucket, Key=f"home/{bob}/notes.txt") == "AccessDenied"
    assert code(as_alice.put_object, Bucket=alpha_bucket, Key=f"home/{bob}/x", Body=b"") == "AccessDenied"
    listed = as_alice.list_objects_v2(Bucket=alpha_bucket, Prefix=f"home/{alice}/")
    assert [o["Key"] for o in listed["Contents"]] == [f"home/{alice}/notes.txt"]
    assert code(as_alice.list_objects_v2, Bucket=alpha_bucket, Prefix=f"home/{bob}/") == "AccessDenied"
    assert code(as_alice.list_objects_v2, Bucket=alpha_bucket) == "AccessDenied"
    result = as_alice.delete_objects(
        Bucket=alpha_bucket,
        Delete={"Objects": [{"Key": f"home/{alice}/notes.txt"}, {"Key": f"home/{bob}/notes.txt"}]},
    )
    assert [d["Key"] for d in result["Deleted"]] == [f"home/{alice}/notes.txt"]
    assert [e["Code"] for e in result["Errors"]] == ["AccessDenied"]


def test_assumed_role_limited_by_role_and_session_policies(alpha: Account, alpha_bucket: str) -> None:
    a3, iam, sts = alpha.client(), alpha.client("iam"), alpha.client("sts")
    a3.put_object(Bucket=alpha_bucket, Key="public/a", Body=b"a")
    a3.put_object(Bucket=alpha_bucket, Key="private/b", Body=b"b")
    role = name("reader")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust(alpha.account_id))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="read",
        PolicyDocument=policy(allow("s3:GetObject", f"arn:aws:s3:::{alpha_bucket}/*")),
    )
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="wide")["Credentials"]
    wide = client("s3", alpha.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert wide.get_object(Bucket=alpha_bucket, Key="private/b")["Body"].read() == b"b"
    assert code(wide.put_object, Bucket=alpha_bucket, Key="public/new", Body=b"") == "AccessDenied"
    session_policy = policy(allow("s3:GetObject", f"arn:aws:s3:::{alpha_bucket}/public/*"))
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="narrow", Policy=session_policy)["Credentials"]
    narrow = client(
        "s3", alpha.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    assert narrow.get_object(Bucket=alpha_bucket, Key="public/a")["Body"].read() == b"a"
    assert code(narrow.get_object, Bucket=alpha_bucket, Key="private/b") == "AccessDenied"
    # a bucket policy can name the role (aws:PrincipalArn is the role's ARN for its sessions)
    a3.put_bucket_policy(
        Bucket=alpha_bucket,
        Policy=policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alpha_bucket}/private/*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": arn}},
            }
        ),
    )
    assert code(wide.get_object, Bucket=alpha_bucket, Key="private/b") == "AccessDenied"
    assert a3.get_object(Bucket=alpha_bucket, Key="private/b")["Body"].read() == b"b"


def test_key_disabled_mid_session(alpha: Account, alpha_bucket: str) -> None:
    iam = alpha.client("iam")
    user, as_user, key = alpha.user(allow("s3:*"))
    as_user.put_object(Bucket=alpha_bucket, Key="k", Body=b"v")
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert code(as_user.get_object, Bucket=alpha_bucket, Key="k") == "InvalidAccessKeyId"
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert as_user.get_object(Bucket=alpha_bucket, Key="k")["Body"].read() == b"v"
    # a changed user policy applies to the next request
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=policy(allow("s3:ListBucket")))
    assert code(as_user.get_object, Bucket=alpha_bucket, Key="k") == "AccessDenied"


def test_public_bucket_of_an_account_is_readable_anonymously(
    server: ServerInfo, alpha: Account, alpha_bucket: str
) -> None:
    a3 = alpha.client()
    a3.put_object(Bucket=alpha_bucket, Key="site/index.html", Body=b"<h1>hi</h1>", ContentType="text/html")
    a3.put_bucket_policy(
        Bucket=alpha_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alpha_bucket}/site/*",
            }
        ),
    )
    with urllib.request.urlopen(f"{server.endpoint}/{alpha_bucket}/site/index.html", timeout=10) as resp:
        assert resp.read() == b"<h1>hi</h1>"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.endpoint}/{alpha_bucket}", timeout=10)
    assert err.value.code == 403


def test_copy_needs_read_access_to_the_source(alpha: Account, beta: Account, alpha_bucket: str) -> None:
    a3, b3 = alpha.client(), beta.client()
    a3.put_object(Bucket=alpha_bucket, Key="src", Body=b"copy me")
    target = unique_bucket_name("bb")
    b3.create_bucket(Bucket=target)
    try:
        source = {"Bucket": alpha_bucket, "Key": "src"}
        assert code(b3.copy_object, Bucket=target, Key="dst", CopySource=source) == "AccessDenied"
        a3.put_object_acl(Bucket=alpha_bucket, Key="src", GrantRead=f'id="{beta.canonical_id}"')
        b3.copy_object(Bucket=target, Key="dst", CopySource=source)
        assert b3.get_object(Bucket=target, Key="dst")["Body"].read() == b"copy me"
        # and alpha cannot copy into beta's bucket without a grant there
        assert code(a3.copy_object, Bucket=target, Key="back", CopySource=source) == "AccessDenied"
    finally:
        empty_and_delete_bucket(b3, target)
