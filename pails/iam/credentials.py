"""Root credentials: from the environment, or generated once and kept in the data directory."""

from __future__ import annotations

import enum
import hashlib
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from pails.iam.policy import Policy

_ROOT_FILE = "root-credentials.json"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


class IdentityKind(enum.Enum):
    ROOT = "root"  # an account's root user
    USER = "user"  # an IAM user
    ASSUMED_ROLE = "assumed-role"  # temporary credentials from sts:AssumeRole
    SESSION = "session"  # temporary credentials from sts:GetSessionToken (acts as its user)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed a request: the shape the authenticator fills and the authorizer reads."""

    access_key: str
    account_id: str
    canonical_id: str
    display_name: str
    is_root: bool = False
    """The account's root user (full control of the account's own resources)."""
    is_admin: bool = False
    """The root of the admin account (the server's root credentials): may manage accounts."""
    kind: IdentityKind = IdentityKind.ROOT
    arn: str = ""
    """arn:aws:iam::ACCOUNT:root | arn:aws:iam::ACCOUNT:user/NAME |
    arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION (aws:PrincipalArn uses the role's ARN)."""
    user_name: str = ""
    """aws:username (IAM users and their GetSessionToken sessions only)."""
    user_id: str = ""
    """aws:userid: the user's unique id, or ROLEID:SESSION for an assumed role."""
    policies: tuple[Policy, ...] = ()
    """Identity-based policies in force: the user's inline policies and its groups', or the role's."""
    session_policy: Policy | None = None
    """An AssumeRole session policy: it can only narrow what `policies` allow."""
    expires_at: float | None = None
    """Unix time at which temporary credentials expire (None for long-term keys)."""


@dataclass(frozen=True, slots=True)
class Credential:
    identity: Identity
    secret_key: str


def _root_identity(access_key: str) -> Identity:
    canonical = hashlib.sha256(b"pails-root-account").hexdigest()
    return Identity(
        access_key=access_key,
        account_id="000000000000",
        canonical_id=canonical,
        display_name="pails-root",
        is_root=True,
        is_admin=True,
        kind=IdentityKind.ROOT,
        arn="arn:aws:iam::000000000000:root",
        user_id="000000000000",
    )


def generate_key_pair() -> tuple[str, str]:
    access = "PA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))
    secret = secrets.token_urlsafe(30)[:40]
    return access, secret


def load_or_create_root(
    data_dir: Path, access_key: str | None, secret_key: str | None
) -> tuple[Credential, bool]:
    """Return the root credential and whether it was generated just now (to print it once)."""
    if access_key and secret_key:
        return Credential(_root_identity(access_key), secret_key), False
    path = data_dir / _ROOT_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        return Credential(_root_identity(saved["access_key"]), saved["secret_key"]), False
    access, secret = generate_key_pair()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"access_key": access, "secret_key": secret}, out)
        out.flush()
        os.fsync(out.fileno())
    return Credential(_root_identity(access), secret), True
