"""STS query API actions (the domain is pails.iam.sts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pails.api.query_protocol import fields
from pails.api.xml import iso8601
from pails.iam.identities import Caller
from pails.iam.sts import StsService, TemporaryCredentials

Params = dict[str, str]
Action = Callable[[StsService, Caller, str, Params], Awaitable[str]]


def credentials_xml(creds: TemporaryCredentials) -> str:
    return (
        "<Credentials>"
        + fields(
            {
                "AccessKeyId": creds.access_key,
                "SecretAccessKey": creds.secret_key,
                "SessionToken": creds.token,
                "Expiration": iso8601(creds.expires_at),
            }
        )
        + "</Credentials>"
    )


async def get_caller_identity(svc: StsService, caller: Caller, source_key: str, p: Params) -> str:
    identity = caller.identity
    return fields({"UserId": identity.user_id, "Account": identity.account_id, "Arn": identity.arn})


async def get_session_token(svc: StsService, caller: Caller, source_key: str, p: Params) -> str:
    return credentials_xml(await svc.get_session_token(caller, source_key, p.get("DurationSeconds")))


async def assume_role(svc: StsService, caller: Caller, source_key: str, p: Params) -> str:
    assumed = await svc.assume_role(
        caller,
        source_key,
        p.get("RoleArn"),
        p.get("RoleSessionName"),
        p.get("DurationSeconds"),
        p.get("Policy"),
    )
    user = fields({"AssumedRoleId": assumed.assumed_role_id, "Arn": assumed.arn})
    return credentials_xml(assumed.credentials) + f"<AssumedRoleUser>{user}</AssumedRoleUser>"


ACTIONS: dict[str, Action] = {
    "GetCallerIdentity": get_caller_identity,
    "GetSessionToken": get_session_token,
    "AssumeRole": assume_role,
}
