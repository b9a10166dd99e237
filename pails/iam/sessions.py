"""Session tokens of temporary credentials: a JWT (HS256, key derived from the server key).

The token carries everything needed to authenticate a request signed with the temporary key:
the access key id, the secret (AES-GCM sealed with the server key, bound to the access key id),
the account, who the session acts as, the long-term key it came from (revocation) and the
session policy. No table: nothing to clean up, and every gateway with the server key can verify.
Pure: no I/O (the caller passes the time).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import jwt

from pails.iam.serverkey import ServerKeyError, ServerKeys

ISSUER = "pails"
_ALGORITHM = "HS256"


class SessionKind(enum.Enum):
    ASSUMED_ROLE = "assumed-role"
    SESSION = "session"  # GetSessionToken: acts as its user (or account root)


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Session:
    access_key: str
    secret_key: str
    account_id: str
    kind: SessionKind
    source_key: str
    """The long-term access key the session was obtained with (directly or by chaining): it stops
    working when that key is disabled or deleted."""
    issued_at: int
    expires_at: int
    user_id: str = ""
    """GetSessionToken of an IAM user: its id ('' for the account root)."""
    role_id: str = ""
    role_session_name: str = ""
    session_policy: str = ""
    """AssumeRole's Policy parameter, as given ('' when none)."""


def encode(session: Session, keys: ServerKeys) -> str:
    claims: dict[str, object] = {
        "iss": ISSUER,
        "iat": session.issued_at,
        "exp": session.expires_at,
        "akid": session.access_key,
        "sec": keys.secrets.seal_text(session.secret_key, session.access_key),
        "acct": session.account_id,
        "kind": session.kind.value,
        "src": session.source_key,
    }
    optional = {
        "uid": session.user_id,
        "rid": session.role_id,
        "rsn": session.role_session_name,
        "sp": session.session_policy,
    }
    claims.update({k: v for k, v in optional.items() if v})
    return jwt.encode(claims, keys.tokens, algorithm=_ALGORITHM)


def _text(claims: dict[str, object], name: str, required: bool = True) -> str:
    value = claims.get(name, None if required else "")
    if not isinstance(value, str):
        raise TokenInvalid(f"claim {name}")
    return value


def decode(token: str, keys: ServerKeys, *, now: float) -> Session:
    """Verify the signature first, then expiry (at `now`); TokenExpired / TokenInvalid."""
    try:
        claims = jwt.decode(
            token,
            keys.tokens,
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "iat", "iss"],
            },
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalid(str(exc)) from None
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise TokenInvalid("exp/iat")
    if now >= exp:
        raise TokenExpired()
    access_key = _text(claims, "akid")
    try:
        kind = SessionKind(_text(claims, "kind"))
        secret = keys.secrets.open_text(_text(claims, "sec"), access_key)
    except (ValueError, ServerKeyError) as exc:
        raise TokenInvalid(str(exc)) from None
    return Session(
        access_key=access_key,
        secret_key=secret,
        account_id=_text(claims, "acct"),
        kind=kind,
        source_key=_text(claims, "src"),
        issued_at=iat,
        expires_at=exp,
        user_id=_text(claims, "uid", False),
        role_id=_text(claims, "rid", False),
        role_session_name=_text(claims, "rsn", False),
        session_policy=_text(claims, "sp", False),
    )
