"""Helpers for the IAM/STS end-to-end tests: boto3 clients for any credentials, unique names."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from botocore.config import Config

ALLOW_IAM_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
}


def name(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def client(
    service: str,
    endpoint: str,
    access_key: str,
    secret_key: str,
    token: str | None = None,
    region: str = "us-east-1",
    **config: Any,
) -> Any:
    cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    if service == "s3":
        cfg = cfg.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    cfg = cfg.merge(Config(**config))
    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        region_name=region,
        config=cfg,
    )


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(*principals: str, action: str = "sts:AssumeRole") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": action}],
        }
    )


def authenticated(call: Any, *args: Any, **kwargs: Any) -> None:
    """The request got past authentication: answered, or refused by authorization (AccessDenied,
    the answer for a principal no policy allows), never a credential error."""
    from botocore.exceptions import ClientError

    try:
        call(*args, **kwargs)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied", exc.response["Error"]


def create_account(
    endpoint: str, access_key: str, secret_key: str, account_name: str | None = None
) -> dict[str, str]:
    """A new account through the admin API (as `pails admin account create --json` does):
    {"account_id", "canonical_id", "name", "access_key_id", "secret_access_key"}."""
    import urllib.request

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"name": account_name or name("acct")}).encode()
    request = AWSRequest(method="POST", url=endpoint.rstrip("/") + "/_pails/admin/accounts", data=body)
    S3SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, method="POST", headers=dict(prepared.headers))
    with urllib.request.urlopen(http, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]
