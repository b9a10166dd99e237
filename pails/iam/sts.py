"""STS: GetCallerIdentity, GetSessionToken and AssumeRole (temporary credentials as signed JWTs)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pails.iam import ids
from pails.iam.access import may_assume, parse_trust_policy
from pails.iam.credentials import IdentityKind
from pails.iam.directory import CredentialStore
from pails.iam.iam_errors import IamError, validation
from pails.iam.identities import Caller
from pails.iam.policy import MalformedPolicy, parse_policy
from pails.iam.sessions import Session, SessionKind, encode

MAX_SESSION_POLICY_CHARS = 2048
USER_MAX_SECONDS = 129_600
ROOT_MAX_SECONDS = 3600
CHAINED_MAX_SECONDS = 3600


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key: str
    secret_key: str
    token: str
    expires_at: int


@dataclass(frozen=True)
class AssumedRole:
    credentials: TemporaryCredentials
    arn: str
    assumed_role_id: str


def _duration(raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return min(default, high)
    try:
        value = int(raw)
    except ValueError:
        raise validation(
            f"Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"
        ) from None
    if not low <= value <= high:
        raise validation(
            f"1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value between {low} and {high}"
        )
    return value


def parse_role_arn(arn: str) -> tuple[str, str]:
    """arn:aws:iam::ACCOUNT:role/PATH/NAME -> (account, name)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not ids.ACCOUNT_ID.fullmatch(parts[4]):
        raise validation(f"{arn} is invalid")
    resource = parts[5]
    if not resource.startswith("role/") or resource.endswith("/"):
        raise validation(f"{arn} is invalid")
    return parts[4], resource.rsplit("/", 1)[-1]


class StsService:
    def __init__(self, directory: CredentialStore, min_duration: int = 900) -> None:
        self.directory = directory
        self.min_duration = min_duration

    def _mint(self, session: Session) -> TemporaryCredentials:
        token = encode(session, self.directory.keys)
        return TemporaryCredentials(session.access_key, session.secret_key, token, session.expires_at)

    async def get_session_token(
        self, caller: Caller, source_key: str, duration: str | None
    ) -> TemporaryCredentials:
        identity = caller.identity
        if identity.kind not in (IdentityKind.ROOT, IdentityKind.USER):
            raise IamError("AccessDenied", "Cannot call GetSessionToken with session credentials")
        high = ROOT_MAX_SECONDS if identity.is_root else USER_MAX_SECONDS
        seconds = _duration(duration, 43_200, self.min_duration, high)
        now = int(time.time())
        return self._mint(
            Session(
                access_key=ids.access_key_id(temporary=True),
                secret_key=ids.secret_access_key(),
                account_id=identity.account_id,
                kind=SessionKind.SESSION,
                source_key=source_key,
                issued_at=now,
                expires_at=now + seconds,
                user_id="" if identity.is_root else identity.user_id,
            )
        )

    async def assume_role(
        self,
        caller: Caller,
        source_key: str,
        role_arn: str | None,
        session_name: str | None,
        duration: str | None,
        policy: str | None,
    ) -> AssumedRole:
        if not role_arn:
            raise validation(
                "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
            )
        if not session_name or not ids.valid_role_session_name(session_name):
            raise validation(
                f"1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2..64"
            )
        account_id, role_name = parse_role_arn(role_arn)
        identity = caller.identity
        denied = IamError(
            "AccessDenied",
            f"User: {identity.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        )
        role = await self.directory.store.get_role(account_id, role_name)
        if role is None or role.arn != role_arn:
            raise denied
        try:
            trust = parse_trust_policy(role.trust_policy)
        except MalformedPolicy:
            raise denied from None
        if not may_assume(identity, trust, role.arn, role.account_id, caller.keys):
            raise denied
        session_policy = ""
        if policy:
            if len(policy) > MAX_SESSION_POLICY_CHARS:
                raise IamError("PackedPolicyTooLarge", "The policy is too large.")
            try:
                parse_policy(policy, forbid_principal=True)
            except MalformedPolicy as exc:
                raise IamError("MalformedPolicyDocument", exc.message) from None
            session_policy = policy
        high = (
            CHAINED_MAX_SECONDS if identity.kind is IdentityKind.ASSUMED_ROLE else role.max_session_duration
        )
        seconds = _duration(duration, 3600, self.min_duration, max(high, self.min_duration))
        now = int(time.time())
        credentials = self._mint(
            Session(
                access_key=ids.access_key_id(temporary=True),
                secret_key=ids.secret_access_key(),
                account_id=role.account_id,
                kind=SessionKind.ASSUMED_ROLE,
                source_key=source_key,
                issued_at=now,
                expires_at=now + seconds,
                role_id=role.role_id,
                role_session_name=session_name,
                session_policy=session_policy,
            )
        )
        return AssumedRole(
            credentials,
            f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session_name}",
            f"{role.role_id}:{session_name}",
        )
