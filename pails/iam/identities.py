"""IAM: accounts, users, access keys, groups, roles and inline policies (the domain behind the IAM
query API and `pails admin`). Every call acts as an authenticated identity inside its account."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pails.iam import ids
from pails.iam.access import authorize, parse_trust_policy
from pails.iam.credentials import Identity, IdentityKind
from pails.iam.directory import CredentialStore
from pails.iam.iam_errors import IamError, no_such_entity, validation
from pails.iam.policy import MalformedPolicy, parse_policy
from pails.meta.iam_models import AccessKey, Account, Group, Role, User
from pails.meta.iam_store import (
    DeleteConflictError,
    EntityAlreadyExistsError,
    LimitExceededError,
    NoSuchEntityError,
)

MAX_POLICY_CHARS = 10_240
MAX_TRUST_POLICY_CHARS = 2_048
STATUSES = ("Active", "Inactive")


@dataclass(frozen=True)
class Caller:
    """The authenticated identity and the request's global condition keys (aws:SourceIp, ...)."""

    identity: Identity
    keys: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.identity.account_id


@dataclass(frozen=True)
class NewKey:
    key: AccessKey
    secret: str
    user_name: str | None


def _check_name(name: str | None, what: str = "userName") -> str:
    if name is None or name == "":
        raise validation(
            f"1 validation error detected: Value at '{what}' failed to satisfy constraint: "
            "Member must not be null"
        )
    if not ids.valid_name(name):
        raise validation(
            f"1 validation error detected: Value '{name}' at '{what}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length 1..64"
        )
    return name


def _check_path(path: str | None) -> str:
    path = path or "/"
    if not ids.valid_path(path):
        raise validation(f"The specified value for path is invalid: {path}")
    return path


def parse_identity_policy(document: str | None, limit: int = MAX_POLICY_CHARS) -> str:
    if not document:
        raise validation(
            "1 validation error detected: Value at 'policyDocument' failed to satisfy "
            "constraint: Member must not be null"
        )
    if len(document) > limit:
        raise IamError("LimitExceeded", f"Maximum policy size of {limit} bytes exceeded.")
    try:
        parse_policy(document, forbid_principal=True)
    except MalformedPolicy as exc:
        raise IamError("MalformedPolicyDocument", exc.message) from None
    return document


class IdentityService:
    def __init__(self, directory: CredentialStore) -> None:
        self.directory = directory
        self.store = directory.store
        self.box = directory.keys.secrets

    def _arn(self, caller: Caller, kind: str, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{caller.account}:{kind}{path}{name}"

    async def _changed(self) -> None:
        await self.directory.changed()

    # -- accounts (admin only) ----------------------------------------------------------------

    async def create_account(self, caller: Identity, name: str) -> tuple[Account, NewKey]:
        if not caller.is_admin:
            raise IamError("AccessDenied", "Only the admin account may create accounts.")
        if not name or len(name) > 64 or not ids.valid_name(name):
            raise validation("An account name is 1..64 letters, digits or +=,.@_-.")
        for _ in range(5):
            account = Account(ids.account_id(), ids.canonical_id(), name, time.time())
            if await self.directory.account(account.account_id) is None:
                break
        try:
            await self.store.create_account(account)
        except EntityAlreadyExistsError:
            raise IamError("EntityAlreadyExists", f"An account named {name} already exists.") from None
        await self._changed()
        await self.directory.refresh_accounts(force=True)
        return account, await self._new_key(account.account_id, None, None)

    async def list_accounts(self, caller: Identity) -> list[Account]:
        if not caller.is_admin:
            raise IamError("AccessDenied", "Only the admin account may list accounts.")
        return await self.store.list_accounts()

    # -- users --------------------------------------------------------------------------------

    async def _user(self, caller: Caller, name: str) -> User:
        user = await self.store.get_user(caller.account, name)
        if user is None:
            raise no_such_entity("user", name)
        return user

    async def _authorized_user(self, caller: Caller, action: str, name: str | None) -> User:
        name = _check_name(name)
        user = await self.store.get_user(caller.account, name)
        authorize(
            caller.identity, action, self._arn(caller, "user", name, user.path if user else "/"), caller.keys
        )
        if user is None:
            raise no_such_entity("user", name)
        return user

    async def create_user(self, caller: Caller, name: str | None, path: str | None) -> User:
        name, path = _check_name(name), _check_path(path)
        authorize(caller.identity, "iam:CreateUser", self._arn(caller, "user", name, path), caller.keys)
        user = User(caller.account, name, ids.unique_id(ids.USER_PREFIX), path, time.time())
        try:
            await self.store.create_user(user)
        except EntityAlreadyExistsError:
            raise IamError("EntityAlreadyExists", f"User with name {name} already exists.") from None
        return user

    async def get_user(self, caller: Caller, name: str | None) -> User:
        """No name: the caller's own user (the account root gets a root pseudo-user)."""
        identity = caller.identity
        if name is None or name == "":
            if identity.is_root:
                account = await self.directory.account(identity.account_id)
                created = account.created_at if account else 0.0
                return User(identity.account_id, "", identity.account_id, "/", created)
            if identity.kind is IdentityKind.ASSUMED_ROLE or not identity.user_name:
                raise validation("Must specify userName when calling with non-User credentials")
            name = identity.user_name
        return await self._authorized_user(caller, "iam:GetUser", name)

    async def list_users(self, caller: Caller, path_prefix: str | None) -> list[User]:
        authorize(caller.identity, "iam:ListUsers", self._arn(caller, "user", "*"), caller.keys)
        return await self.store.list_users(caller.account, path_prefix or "/")

    async def delete_user(self, caller: Caller, name: str | None) -> None:
        user = await self._authorized_user(caller, "iam:DeleteUser", name)
        try:
            await self.store.delete_user(caller.account, user.name)
        except NoSuchEntityError:
            raise no_such_entity("user", user.name) from None
        except DeleteConflictError:
            raise IamError(
                "DeleteConflict",
                "Cannot delete entity, must delete access keys, policies and group memberships first.",
            ) from None
        await self._changed()

    # -- access keys --------------------------------------------------------------------------

    async def _key_owner(self, caller: Caller, action: str, user_name: str | None) -> User | None:
        """The user whose keys are meant: named, or the caller's own (None: the account root)."""
        identity = caller.identity
        if user_name:
            return await self._authorized_user(caller, action, user_name)
        if identity.is_root:
            return None
        if not identity.user_name:
            raise validation("Must specify userName when calling with non-User credentials")
        return await self._authorized_user(caller, action, identity.user_name)

    async def _new_key(self, account_id: str, user: User | None, user_name: str | None) -> NewKey:
        access_key, secret = ids.access_key_id(), ids.secret_access_key()
        key = AccessKey(
            access_key,
            account_id,
            user.user_id if user else None,
            self.box.seal(secret, access_key),
            "Active",
            time.time(),
        )
        try:
            await self.store.create_access_key(key)
        except LimitExceededError as exc:
            raise IamError("LimitExceeded", str(exc)) from None
        return NewKey(key, secret, user_name)

    async def create_access_key(self, caller: Caller, user_name: str | None) -> NewKey:
        user = await self._key_owner(caller, "iam:CreateAccessKey", user_name)
        return await self._new_key(caller.account, user, user.name if user else None)

    async def list_access_keys(
        self, caller: Caller, user_name: str | None
    ) -> tuple[User | None, list[AccessKey]]:
        user = await self._key_owner(caller, "iam:ListAccessKeys", user_name)
        return user, await self.store.list_access_keys(caller.account, user.user_id if user else None)

    async def update_access_key(
        self, caller: Caller, user_name: str | None, access_key_id: str | None, status: str | None
    ) -> None:
        if status not in STATUSES:
            raise validation(
                f"Value '{status}' at 'status' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Active, Inactive]"
            )
        user = await self._key_owner(caller, "iam:UpdateAccessKey", user_name)
        found = await self.store.set_access_key_status(
            caller.account, user.user_id if user else None, access_key_id or "", status
        )
        await self._changed()
        if not found:
            raise IamError("NoSuchEntity", f"The Access Key with id {access_key_id} cannot be found.")

    async def delete_access_key(
        self, caller: Caller, user_name: str | None, access_key_id: str | None
    ) -> None:
        user = await self._key_owner(caller, "iam:DeleteAccessKey", user_name)
        found = await self.store.delete_access_key(
            caller.account, user.user_id if user else None, access_key_id or ""
        )
        await self._changed()
        if not found:
            raise IamError("NoSuchEntity", f"The Access Key with id {access_key_id} cannot be found.")

    # -- inline policies ----------------------------------------------------------------------

    async def _owner(self, caller: Caller, kind: str, action: str, name: str | None) -> tuple[str, str]:
        """(unique id, name) of the user, group or role named, after authorizing `action` on it."""
        if kind == "user":
            user = await self._authorized_user(caller, action, name)
            return user.user_id, user.name
        name = _check_name(name, f"{kind}Name")
        entity: Group | Role | None
        if kind == "group":
            entity = await self.store.get_group(caller.account, name)
        else:
            entity = await self.store.get_role(caller.account, name)
        authorize(
            caller.identity,
            action,
            self._arn(caller, kind, name, entity.path if entity else "/"),
            caller.keys,
        )
        if entity is None:
            raise no_such_entity(kind, name)
        unique = entity.group_id if isinstance(entity, Group) else entity.role_id
        return unique, entity.name

    async def put_policy(
        self, caller: Caller, kind: str, name: str | None, policy_name: str | None, document: str | None
    ) -> None:
        action = f"iam:Put{kind.capitalize()}Policy"
        owner_id, _ = await self._owner(caller, kind, action, name)
        policy_name = _check_name(policy_name, "policyName")
        await self.store.put_policy(owner_id, policy_name, parse_identity_policy(document))
        await self._changed()

    async def get_policy(
        self, caller: Caller, kind: str, name: str | None, policy_name: str | None
    ) -> tuple[str, str]:
        owner_id, owner_name = await self._owner(caller, kind, f"iam:Get{kind.capitalize()}Policy", name)
        policy_name = _check_name(policy_name, "policyName")
        document = await self.store.get_policy(owner_id, policy_name)
        if document is None:
            raise IamError("NoSuchEntity", f"The {kind} policy with name {policy_name} cannot be found.")
        return owner_name, document

    async def delete_policy(
        self, caller: Caller, kind: str, name: str | None, policy_name: str | None
    ) -> None:
        owner_id, _ = await self._owner(caller, kind, f"iam:Delete{kind.capitalize()}Policy", name)
        policy_name = _check_name(policy_name, "policyName")
        if not await self.store.delete_policy(owner_id, policy_name):
            raise IamError("NoSuchEntity", f"The {kind} policy with name {policy_name} cannot be found.")
        await self._changed()

    async def list_policies(self, caller: Caller, kind: str, name: str | None) -> list[str]:
        owner_id, _ = await self._owner(caller, kind, f"iam:List{kind.capitalize()}Policies", name)
        return await self.store.list_policies(owner_id)

    # -- groups -------------------------------------------------------------------------------

    async def create_group(self, caller: Caller, name: str | None, path: str | None) -> Group:
        name, path = _check_name(name, "groupName"), _check_path(path)
        authorize(caller.identity, "iam:CreateGroup", self._arn(caller, "group", name, path), caller.keys)
        group = Group(caller.account, name, ids.unique_id(ids.GROUP_PREFIX), path, time.time())
        try:
            await self.store.create_group(group)
        except EntityAlreadyExistsError:
            raise IamError("EntityAlreadyExists", f"Group with name {name} already exists.") from None
        return group

    async def _group(self, caller: Caller, action: str, name: str | None) -> Group:
        name = _check_name(name, "groupName")
        group = await self.store.get_group(caller.account, name)
        authorize(
            caller.identity,
            action,
            self._arn(caller, "group", name, group.path if group else "/"),
            caller.keys,
        )
        if group is None:
            raise no_such_entity("group", name)
        return group

    async def get_group(self, caller: Caller, name: str | None) -> tuple[Group, list[User]]:
        group = await self._group(caller, "iam:GetGroup", name)
        return group, await self.store.group_members(group.group_id)

    async def list_groups(self, caller: Caller) -> list[Group]:
        authorize(caller.identity, "iam:ListGroups", self._arn(caller, "group", "*"), caller.keys)
        return await self.store.list_groups(caller.account)

    async def list_groups_for_user(self, caller: Caller, user_name: str | None) -> list[Group]:
        user = await self._authorized_user(caller, "iam:ListGroupsForUser", user_name)
        return await self.store.groups_of_user(user.user_id)

    async def add_user_to_group(self, caller: Caller, group_name: str | None, user_name: str | None) -> None:
        group = await self._group(caller, "iam:AddUserToGroup", group_name)
        user = await self._user(caller, _check_name(user_name))
        await self.store.add_member(group.group_id, user.user_id)
        await self._changed()

    async def remove_user_from_group(
        self, caller: Caller, group_name: str | None, user_name: str | None
    ) -> None:
        group = await self._group(caller, "iam:RemoveUserFromGroup", group_name)
        user = await self._user(caller, _check_name(user_name))
        if not await self.store.remove_member(group.group_id, user.user_id):
            raise IamError("NoSuchEntity", f"User {user.name} is not in group {group.name}.")
        await self._changed()

    async def delete_group(self, caller: Caller, name: str | None) -> None:
        group = await self._group(caller, "iam:DeleteGroup", name)
        try:
            await self.store.delete_group(caller.account, group.name)
        except NoSuchEntityError:
            raise no_such_entity("group", group.name) from None
        except DeleteConflictError:
            raise IamError(
                "DeleteConflict", "Cannot delete entity, must remove users and policies from group first."
            ) from None
        await self._changed()

    # -- roles --------------------------------------------------------------------------------

    async def create_role(
        self,
        caller: Caller,
        name: str | None,
        path: str | None,
        trust_policy: str | None,
        max_session_duration: str | None,
        description: str | None,
    ) -> Role:
        name, path = _check_name(name, "roleName"), _check_path(path)
        authorize(caller.identity, "iam:CreateRole", self._arn(caller, "role", name, path), caller.keys)
        if not trust_policy:
            raise validation(
                "1 validation error detected: Value at 'assumeRolePolicyDocument' failed to "
                "satisfy constraint: Member must not be null"
            )
        if len(trust_policy) > MAX_TRUST_POLICY_CHARS:
            raise IamError(
                "LimitExceeded", f"Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_CHARS}"
            )
        try:
            parse_trust_policy(trust_policy)
        except MalformedPolicy as exc:
            raise IamError("MalformedPolicyDocument", exc.message) from None
        try:
            duration = int(max_session_duration) if max_session_duration else 3600
        except ValueError:
            raise validation("MaxSessionDuration must be a number") from None
        if not 3600 <= duration <= 43200:
            raise validation(
                f"1 validation error detected: Value '{duration}' at 'maxSessionDuration' failed to satisfy "
                "constraint: Member must have value between 3600 and 43200"
            )
        role = Role(
            caller.account,
            name,
            ids.unique_id(ids.ROLE_PREFIX),
            path,
            trust_policy,
            duration,
            description or "",
            time.time(),
        )
        try:
            await self.store.create_role(role)
        except EntityAlreadyExistsError:
            raise IamError("EntityAlreadyExists", f"Role with name {name} already exists.") from None
        return role

    async def get_role(self, caller: Caller, name: str | None) -> Role:
        name = _check_name(name, "roleName")
        role = await self.store.get_role(caller.account, name)
        authorize(
            caller.identity,
            "iam:GetRole",
            self._arn(caller, "role", name, role.path if role else "/"),
            caller.keys,
        )
        if role is None:
            raise no_such_entity("role", name)
        return role

    async def list_roles(self, caller: Caller, path_prefix: str | None) -> list[Role]:
        authorize(caller.identity, "iam:ListRoles", self._arn(caller, "role", "*"), caller.keys)
        return await self.store.list_roles(caller.account, path_prefix or "/")

    async def delete_role(self, caller: Caller, name: str | None) -> None:
        name = _check_name(name, "roleName")
        role = await self.store.get_role(caller.account, name)
        authorize(
            caller.identity,
            "iam:DeleteRole",
            self._arn(caller, "role", name, role.path if role else "/"),
            caller.keys,
        )
        try:
            await self.store.delete_role(caller.account, name)
        except NoSuchEntityError:
            raise no_such_entity("role", name) from None
        except DeleteConflictError:
            raise IamError("DeleteConflict", "Cannot delete entity, must delete policies first.") from None
        await self._changed()
