"""`pails admin account|user|key|policy ...`: a thin client of a running server's admin API (accounts)
and its IAM query API (everything else), signed with the caller's AWS_ACCESS_KEY_ID/SECRET."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

Endpoint = Annotated[
    str,
    typer.Option(
        "--endpoint", envvar="PAILS_ENDPOINT", help="The server's URL (default http://127.0.0.1:9000)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_ENDPOINT = "http://127.0.0.1:9000"

account_app = typer.Typer(help="Accounts (tenants); the admin account only.", no_args_is_help=True)
user_app = typer.Typer(help="IAM users of your account.", no_args_is_help=True)
key_app = typer.Typer(
    help="Access keys (of a user, or of your account's root without --user).", no_args_is_help=True
)
policy_app = typer.Typer(help="Inline policies of a user.", no_args_is_help=True)

console = Console()
errors = Console(stderr=True)


def _credentials() -> tuple[str, str, str | None]:
    access, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        errors.print(
            "[red]Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. the root credentials).[/red]"
        )
        raise typer.Exit(2)
    return access, secret, os.environ.get("AWS_SESSION_TOKEN")


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _iam(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    access, secret, token = _credentials()
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=_region(),
        config=Config(retries={"total_max_attempts": 1}),
    )


def _admin(endpoint: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the admin API (JSON), signed with SigV4 for the s3 service (the endpoint's own)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    access, secret, token = _credentials()
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method=method, url=endpoint.rstrip("/") + path, data=data)
    request.headers["Content-Type"] = "application/json"
    S3SigV4Auth(Credentials(access, secret, token), "s3", _region()).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(
        prepared.url, data=data or None, method=method, headers=dict(prepared.headers)
    )
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("message", text)
        except ValueError:
            message = text
        errors.print(f"[red]{exc.code}: {message}[/red]")
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        errors.print(f"[red]cannot reach {endpoint}: {exc.reason}[/red]")
        raise typer.Exit(1) from None


def _call(operation: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import ClientError, EndpointConnectionError

    try:
        return operation(**{k: v for k, v in kwargs.items() if v is not None})
    except ClientError as exc:
        error = exc.response.get("Error", {})
        errors.print(f"[red]{error.get('Code')}: {error.get('Message')}[/red]")
        raise typer.Exit(1) from None
    except EndpointConnectionError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _print(rows: list[dict[str, Any]], columns: list[str], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


# -- accounts -----------------------------------------------------------------------------------


@account_app.command("create")
def account_create(name: str, endpoint: Endpoint = DEFAULT_ENDPOINT, as_json: Json = False) -> None:
    """Create an account; prints its ids and root access key (the secret is shown only now)."""
    created = _admin(endpoint, "POST", "/_pails/admin/accounts", {"name": name})
    if as_json:
        sys.stdout.write(json.dumps(created, indent=2) + "\n")
        return
    _print([created], ["account_id", "name", "canonical_id"], False, "Account created")
    console.print(f"AWS_ACCESS_KEY_ID={created['access_key_id']}")
    console.print(f"AWS_SECRET_ACCESS_KEY={created['secret_access_key']}")
    console.print("[yellow]Store the secret now: it is not shown again.[/yellow]")


@account_app.command("list")
def account_list(endpoint: Endpoint = DEFAULT_ENDPOINT, as_json: Json = False) -> None:
    """List accounts."""
    rows = _admin(endpoint, "GET", "/_pails/admin/accounts")
    _print(rows, ["account_id", "name", "canonical_id", "created"], as_json, "Accounts")


# -- users --------------------------------------------------------------------------------------


def _user_row(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user.get(k) for k in ("UserName", "UserId", "Arn", "Path", "CreateDate")}


@user_app.command("create")
def user_create(
    name: str,
    path: Annotated[str | None, typer.Option("--path")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT,
    as_json: Json = False,
) -> None:
    """Create a user."""
    user = _call(_iam(endpoint).create_user, UserName=name, Path=path)["User"]
    _print([_user_row(user)], ["UserName", "UserId", "Arn"], as_json, "User created")


@user_app.command("list")
def user_list(endpoint: Endpoint = DEFAULT_ENDPOINT, as_json: Json = False) -> None:
    """List the users of your account."""
    pages = _iam(endpoint).get_paginator("list_users").paginate()  # IAM pages 100 users at a time
    users = _call(lambda: [user for page in pages for user in page["Users"]])
    _print([_user_row(u) for u in users], ["UserName", "UserId", "Arn", "CreateDate"], as_json, "Users")


@user_app.command("delete")
def user_delete(name: str, endpoint: Endpoint = DEFAULT_ENDPOINT) -> None:
    """Delete a user (its keys and policies must be deleted first)."""
    _call(_iam(endpoint).delete_user, UserName=name)
    errors.print(f"deleted user {name}")


# -- keys ---------------------------------------------------------------------------------------

User = Annotated[str | None, typer.Option("--user", help="The user (default: yours / your account root).")]


@key_app.command("create")
def key_create(user: User = None, endpoint: Endpoint = DEFAULT_ENDPOINT, as_json: Json = False) -> None:
    """Create an access key; the secret is shown only now."""
    key = _call(_iam(endpoint).create_access_key, UserName=user)["AccessKey"]
    row = {k: key.get(k) for k in ("UserName", "AccessKeyId", "SecretAccessKey", "Status", "CreateDate")}
    _print([row], ["UserName", "AccessKeyId", "SecretAccessKey", "Status"], as_json, "Access key created")


@key_app.command("list")
def key_list(user: User = None, endpoint: Endpoint = DEFAULT_ENDPOINT, as_json: Json = False) -> None:
    """List access keys."""
    keys = _call(_iam(endpoint).list_access_keys, UserName=user)["AccessKeyMetadata"]
    rows = [{k: m.get(k) for k in ("UserName", "AccessKeyId", "Status", "CreateDate")} for m in keys]
    _print(rows, ["UserName", "AccessKeyId", "Status", "CreateDate"], as_json, "Access keys")


def _set_status(key_id: str, user: str | None, endpoint: str, status: str) -> None:
    _call(_iam(endpoint).update_access_key, UserName=user, AccessKeyId=key_id, Status=status)
    errors.print(f"{key_id}: {status}")


@key_app.command("disable")
def key_disable(key_id: str, user: User = None, endpoint: Endpoint = DEFAULT_ENDPOINT) -> None:
    """Make a key Inactive (it stops working at once)."""
    _set_status(key_id, user, endpoint, "Inactive")


@key_app.command("enable")
def key_enable(key_id: str, user: User = None, endpoint: Endpoint = DEFAULT_ENDPOINT) -> None:
    """Make a key Active again."""
    _set_status(key_id, user, endpoint, "Active")


@key_app.command("delete")
def key_delete(key_id: str, user: User = None, endpoint: Endpoint = DEFAULT_ENDPOINT) -> None:
    """Delete a key."""
    _call(_iam(endpoint).delete_access_key, UserName=user, AccessKeyId=key_id)
    errors.print(f"deleted {key_id}")


# -- policies -----------------------------------------------------------------------------------


@policy_app.command("put")
def policy_put(
    user: str,
    name: str,
    file: Annotated[Path, typer.Argument(help="The policy document (JSON); - for stdin.")],
    endpoint: Endpoint = DEFAULT_ENDPOINT,
) -> None:
    """Attach (or replace) an inline policy of USER from FILE."""
    document = sys.stdin.read() if str(file) == "-" else file.read_text()
    _call(_iam(endpoint).put_user_policy, UserName=user, PolicyName=name, PolicyDocument=document)
    errors.print(f"put policy {name} on {user}")


@policy_app.command("get")
def policy_get(user: str, name: str, endpoint: Endpoint = DEFAULT_ENDPOINT) -> None:
    """Print an inline policy of USER (JSON)."""
    got = _call(_iam(endpoint).get_user_policy, UserName=user, PolicyName=name)
    sys.stdout.write(json.dumps(got["PolicyDocument"], indent=2) + "\n")


@policy_app.command("delete")
def policy_delete(user: str, name: str, endpoint: Endpoint = DEFAULT_ENDPOINT) -> None:
    """Delete an inline policy of USER."""
    _call(_iam(endpoint).delete_user_policy, UserName=user, PolicyName=name)
    errors.print(f"deleted policy {name} of {user}")


@policy_app.command("list")
def policy_list(user: str, endpoint: Endpoint = DEFAULT_ENDPOINT, as_json: Json = False) -> None:
    """List the inline policies of USER."""
    names = _call(_iam(endpoint).list_user_policies, UserName=user)["PolicyNames"]
    _print([{"PolicyName": n} for n in names], ["PolicyName"], as_json, f"Policies of {user}")


def register(admin: typer.Typer) -> None:
    admin.add_typer(account_app, name="account")
    admin.add_typer(user_app, name="user")
    admin.add_typer(key_app, name="key")
    admin.add_typer(policy_app, name="policy")
