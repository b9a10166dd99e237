"""IAM records as stored: accounts, users, access keys, groups, roles (plain values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    """12 digits."""
    canonical_id: str
    """64 hex digits: the owner id of the account's buckets (ListBuckets, ACLs)."""
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class User:
    account_id: str
    name: str
    user_id: str
    """AIDA... (aws:userid)."""
    path: str
    created_at: float

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    account_id: str
    user_id: str | None
    """None: a key of the account's root user."""
    secret: bytes
    """The encrypted secret (pails.iam.secrets.SecretBox)."""
    status: str
    """Active | Inactive."""
    created_at: float


@dataclass(frozen=True, slots=True)
class Group:
    account_id: str
    name: str
    group_id: str
    path: str
    created_at: float

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:group{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class Role:
    account_id: str
    name: str
    role_id: str
    path: str
    trust_policy: str
    max_session_duration: int
    description: str
    created_at: float

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role{self.path}{self.name}"
