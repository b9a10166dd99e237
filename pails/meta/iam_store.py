"""IAM storage over either metadata backend: accounts, users, keys, groups, roles, inline policies.

The rules live in the database: names are unique per account (primary keys on the lower-cased
name), a key or membership names an existing user (foreign keys), and every write is a single
statement whose WHERE clause carries its precondition (e.g. a user is deleted only while it has no
keys, policies or groups), so no transaction spans statements and the same SQL serves SQLite and
PostgreSQL through a two-method runner (pails.meta.iam_sqlite, pails.meta.iam_postgres).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pails.meta.iam_models import AccessKey, Account, Group, Role, User


class EntityAlreadyExistsError(Exception):
    """The name is taken in this account (IAM: EntityAlreadyExists)."""


class NoSuchEntityError(Exception):
    """IAM: NoSuchEntity."""


class DeleteConflictError(Exception):
    """The entity still has subordinates (keys, policies, members): IAM DeleteConflict."""


class LimitExceededError(Exception):
    """IAM: LimitExceeded (e.g. a third access key)."""


class SqlRunner(Protocol):
    """One statement at a time; SQL uses `?` placeholders and the type names TEXT, BLOB and REAL in
    CASTs (the PostgreSQL runner renumbers the placeholders and translates the names)."""

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Execute a write; return the number of rows it changed (0 when a unique key was taken)."""
        ...


MAX_KEYS_PER_OWNER = 2

_ACCOUNT = "account_id, canonical_id, name, created_at"
_USER = "account_id, name, user_id, path, created_at"
_KEY = "access_key_id, account_id, user_id, secret, status, created_at"
_GROUP = "account_id, name, group_id, path, created_at"
_ROLE = "account_id, name, role_id, path, trust_policy, max_session_duration, description, created_at"


def _account(row: Sequence[Any]) -> Account:
    return Account(str(row[0]), str(row[1]), str(row[2]), float(row[3]))


def _user(row: Sequence[Any]) -> User:
    return User(str(row[0]), str(row[1]), str(row[2]), str(row[3]), float(row[4]))


def _key(row: Sequence[Any]) -> AccessKey:
    user_id = None if row[2] is None else str(row[2])
    return AccessKey(str(row[0]), str(row[1]), user_id, bytes(row[3]), str(row[4]), float(row[5]))


def _group(row: Sequence[Any]) -> Group:
    return Group(str(row[0]), str(row[1]), str(row[2]), str(row[3]), float(row[4]))


def _role(row: Sequence[Any]) -> Role:
    return Role(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        int(row[5]),
        str(row[6]),
        float(row[7]),
    )


class IdentityStore:
    """The IAM tables of one metadata store."""

    def __init__(self, sql: SqlRunner) -> None:
        self._sql = sql

    # accounts

    async def create_account(self, account: Account) -> None:
        changed = await self._sql.run(
            f"INSERT INTO iam_accounts ({_ACCOUNT}, name_key) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                account.account_id,
                account.canonical_id,
                account.name,
                account.created_at,
                account.name.lower(),
            ),
        )
        if changed == 0:
            raise EntityAlreadyExistsError(account.name)

    async def list_accounts(self) -> list[Account]:
        rows = await self._sql.rows(f"SELECT {_ACCOUNT} FROM iam_accounts ORDER BY account_id")
        return [_account(r) for r in rows]

    async def get_account(self, account_id: str) -> Account | None:
        rows = await self._sql.rows(
            f"SELECT {_ACCOUNT} FROM iam_accounts WHERE account_id = ?", (account_id,)
        )
        return _account(rows[0]) if rows else None

    # users

    async def create_user(self, user: User) -> None:
        changed = await self._sql.run(
            f"INSERT INTO iam_users ({_USER}, name_key) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (user.account_id, user.name, user.user_id, user.path, user.created_at, user.name.lower()),
        )
        if changed == 0:
            raise EntityAlreadyExistsError(user.name)

    async def get_user(self, account_id: str, name: str) -> User | None:
        rows = await self._sql.rows(
            f"SELECT {_USER} FROM iam_users WHERE account_id = ? AND name_key = ?", (account_id, name.lower())
        )
        return _user(rows[0]) if rows else None

    async def get_user_by_id(self, user_id: str) -> User | None:
        rows = await self._sql.rows(f"SELECT {_USER} FROM iam_users WHERE user_id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    async def list_users(self, account_id: str, path_prefix: str = "/") -> list[User]:
        rows = await self._sql.rows(
            f"SELECT {_USER} FROM iam_users WHERE account_id = ? ORDER BY name_key", (account_id,)
        )
        return [u for u in map(_user, rows) if u.path.startswith(path_prefix)]

    async def delete_user(self, account_id: str, name: str) -> None:
        """NoSuchEntityError, or DeleteConflictError while it has keys, inline policies or groups."""
        changed = await self._sql.run(
            "DELETE FROM iam_users WHERE account_id = ? AND name_key = ? "
            "AND NOT EXISTS (SELECT 1 FROM iam_access_keys k WHERE k.user_id = iam_users.user_id) "
            "AND NOT EXISTS (SELECT 1 FROM iam_inline_policies p WHERE p.owner_id = iam_users.user_id) "
            "AND NOT EXISTS (SELECT 1 FROM iam_group_members m WHERE m.user_id = iam_users.user_id)",
            (account_id, name.lower()),
        )
        if changed == 0:
            if await self.get_user(account_id, name) is None:
                raise NoSuchEntityError(name)
            raise DeleteConflictError(name)

    # access keys

    async def create_access_key(self, key: AccessKey, limit: int = MAX_KEYS_PER_OWNER) -> None:
        """LimitExceededError when the owner already has `limit` keys; NoSuchEntityError when its
        user is gone."""
        owner_clause = "user_id IS NULL" if key.user_id is None else "user_id = ?"
        owner_args: tuple[Any, ...] = () if key.user_id is None else (key.user_id,)
        changed = await self._sql.run(
            f"INSERT INTO iam_access_keys ({_KEY}) "
            "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BLOB), CAST(? AS TEXT), "
            "CAST(? AS REAL) "
            f"WHERE (SELECT count(*) FROM iam_access_keys WHERE account_id = ? AND {owner_clause}) < ?",
            (
                key.access_key_id,
                key.account_id,
                key.user_id,
                key.secret,
                key.status,
                key.created_at,
                key.account_id,
                *owner_args,
                limit,
            ),
        )
        if changed == 0:
            raise LimitExceededError(f"Cannot exceed quota for AccessKeysPerUser: {limit}")

    async def get_access_key(self, access_key_id: str) -> AccessKey | None:
        rows = await self._sql.rows(
            f"SELECT {_KEY} FROM iam_access_keys WHERE access_key_id = ?", (access_key_id,)
        )
        return _key(rows[0]) if rows else None

    async def list_access_keys(self, account_id: str, user_id: str | None) -> list[AccessKey]:
        if user_id is None:
            sql = f"SELECT {_KEY} FROM iam_access_keys WHERE account_id = ? AND user_id IS NULL"
            args: tuple[Any, ...] = (account_id,)
        else:
            sql = f"SELECT {_KEY} FROM iam_access_keys WHERE account_id = ? AND user_id = ?"
            args = (account_id, user_id)
        return [_key(r) for r in await self._sql.rows(sql + " ORDER BY created_at, access_key_id", args)]

    async def set_access_key_status(
        self, account_id: str, user_id: str | None, access_key_id: str, status: str
    ) -> bool:
        owner = "user_id IS NULL" if user_id is None else "user_id = ?"
        args = (status, access_key_id, account_id) + (() if user_id is None else (user_id,))
        sql = f"UPDATE iam_access_keys SET status = ? WHERE access_key_id = ? AND account_id = ? AND {owner}"
        return await self._sql.run(sql, args) > 0

    async def delete_access_key(self, account_id: str, user_id: str | None, access_key_id: str) -> bool:
        owner = "user_id IS NULL" if user_id is None else "user_id = ?"
        args = (access_key_id, account_id) + (() if user_id is None else (user_id,))
        sql = f"DELETE FROM iam_access_keys WHERE access_key_id = ? AND account_id = ? AND {owner}"
        return await self._sql.run(sql, args) > 0

    # inline policies (of a user, group or role, by its unique id)

    async def put_policy(self, owner_id: str, name: str, document: str) -> None:
        await self._sql.run(
            "INSERT INTO iam_inline_policies (owner_id, name, document) VALUES (?, ?, ?) "
            "ON CONFLICT (owner_id, name) DO UPDATE SET document = excluded.document",
            (owner_id, name, document),
        )

    async def get_policy(self, owner_id: str, name: str) -> str | None:
        rows = await self._sql.rows(
            "SELECT document FROM iam_inline_policies WHERE owner_id = ? AND name = ?", (owner_id, name)
        )
        return str(rows[0][0]) if rows else None

    async def delete_policy(self, owner_id: str, name: str) -> bool:
        return (
            await self._sql.run(
                "DELETE FROM iam_inline_policies WHERE owner_id = ? AND name = ?", (owner_id, name)
            )
            > 0
        )

    async def list_policies(self, owner_id: str) -> list[str]:
        rows = await self._sql.rows(
            "SELECT name FROM iam_inline_policies WHERE owner_id = ? ORDER BY name", (owner_id,)
        )
        return [str(r[0]) for r in rows]

    async def user_policy_documents(self, user_id: str) -> list[str]:
        """The user's inline policies and those of its groups (the identity policies in force)."""
        rows = await self._sql.rows(
            "SELECT document FROM iam_inline_policies WHERE owner_id = ? OR owner_id IN "
            "(SELECT group_id FROM iam_group_members WHERE user_id = ?) ORDER BY owner_id, name",
            (user_id, user_id),
        )
        return [str(r[0]) for r in rows]

    async def policy_documents(self, owner_id: str) -> list[str]:
        rows = await self._sql.rows(
            "SELECT document FROM iam_inline_policies WHERE owner_id = ? ORDER BY name", (owner_id,)
        )
        return [str(r[0]) for r in rows]

    # groups

    async def create_group(self, group: Group) -> None:
        changed = await self._sql.run(
            f"INSERT INTO iam_groups ({_GROUP}, name_key) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (group.account_id, group.name, group.group_id, group.path, group.created_at, group.name.lower()),
        )
        if changed == 0:
            raise EntityAlreadyExistsError(group.name)

    async def get_group(self, account_id: str, name: str) -> Group | None:
        rows = await self._sql.rows(
            f"SELECT {_GROUP} FROM iam_groups WHERE account_id = ? AND name_key = ?",
            (account_id, name.lower()),
        )
        return _group(rows[0]) if rows else None

    async def list_groups(self, account_id: str) -> list[Group]:
        rows = await self._sql.rows(
            f"SELECT {_GROUP} FROM iam_groups WHERE account_id = ? ORDER BY name_key", (account_id,)
        )
        return [_group(r) for r in rows]

    async def group_members(self, group_id: str) -> list[User]:
        cols = ", ".join(f"u.{c.strip()}" for c in _USER.split(","))
        rows = await self._sql.rows(
            f"SELECT {cols} FROM iam_users u JOIN iam_group_members m ON m.user_id = u.user_id "
            "WHERE m.group_id = ? ORDER BY u.name_key",
            (group_id,),
        )
        return [_user(r) for r in rows]

    async def groups_of_user(self, user_id: str) -> list[Group]:
        cols = ", ".join(f"g.{c.strip()}" for c in _GROUP.split(","))
        rows = await self._sql.rows(
            f"SELECT {cols} FROM iam_groups g JOIN iam_group_members m ON m.group_id = g.group_id "
            "WHERE m.user_id = ? ORDER BY g.name_key",
            (user_id,),
        )
        return [_group(r) for r in rows]

    async def add_member(self, group_id: str, user_id: str) -> None:
        await self._sql.run(
            "INSERT INTO iam_group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (group_id, user_id),
        )

    async def remove_member(self, group_id: str, user_id: str) -> bool:
        return (
            await self._sql.run(
                "DELETE FROM iam_group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            )
            > 0
        )

    async def delete_group(self, account_id: str, name: str) -> None:
        changed = await self._sql.run(
            "DELETE FROM iam_groups WHERE account_id = ? AND name_key = ? "
            "AND NOT EXISTS (SELECT 1 FROM iam_group_members m WHERE m.group_id = iam_groups.group_id) "
            "AND NOT EXISTS (SELECT 1 FROM iam_inline_policies p WHERE p.owner_id = iam_groups.group_id)",
            (account_id, name.lower()),
        )
        if changed == 0:
            if await self.get_group(account_id, name) is None:
                raise NoSuchEntityError(name)
            raise DeleteConflictError(name)

    # roles

    async def create_role(self, role: Role) -> None:
        changed = await self._sql.run(
            f"INSERT INTO iam_roles ({_ROLE}, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                role.account_id,
                role.name,
                role.role_id,
                role.path,
                role.trust_policy,
                role.max_session_duration,
                role.description,
                role.created_at,
                role.name.lower(),
            ),
        )
        if changed == 0:
            raise EntityAlreadyExistsError(role.name)

    async def get_role(self, account_id: str, name: str) -> Role | None:
        rows = await self._sql.rows(
            f"SELECT {_ROLE} FROM iam_roles WHERE account_id = ? AND name_key = ?", (account_id, name.lower())
        )
        return _role(rows[0]) if rows else None

    async def get_role_by_id(self, role_id: str) -> Role | None:
        rows = await self._sql.rows(f"SELECT {_ROLE} FROM iam_roles WHERE role_id = ?", (role_id,))
        return _role(rows[0]) if rows else None

    async def list_roles(self, account_id: str, path_prefix: str = "/") -> list[Role]:
        rows = await self._sql.rows(
            f"SELECT {_ROLE} FROM iam_roles WHERE account_id = ? ORDER BY name_key", (account_id,)
        )
        return [r for r in map(_role, rows) if r.path.startswith(path_prefix)]

    async def delete_role(self, account_id: str, name: str) -> None:
        changed = await self._sql.run(
            "DELETE FROM iam_roles WHERE account_id = ? AND name_key = ? "
            "AND NOT EXISTS (SELECT 1 FROM iam_inline_policies p WHERE p.owner_id = iam_roles.role_id)",
            (account_id, name.lower()),
        )
        if changed == 0:
            if await self.get_role(account_id, name) is None:
                raise NoSuchEntityError(name)
            raise DeleteConflictError(name)


def identity_store_for(meta: object) -> IdentityStore:
    """The IAM tables of an opened metadata store (SQLite or PostgreSQL)."""
    from pails.meta.sqlite import SqliteMetadataStore

    if isinstance(meta, SqliteMetadataStore):
        from pails.meta.iam_sqlite import sqlite_identity_store

        return sqlite_identity_store(meta)
    from pails.meta.iam_postgres import postgres_identity_store
    from pails.meta.postgres import PostgresMetadataStore

    if isinstance(meta, PostgresMetadataStore):
        return postgres_identity_store(meta)
    raise TypeError(f"no IAM storage for {type(meta).__name__}")
