"""IAM query API actions: parameters in, XML result out (the domain is pails.iam.identities)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from pails.api.query_protocol import fields, members, policy_text
from pails.api.xml import escape, iso8601
from pails.iam.iam_errors import validation
from pails.iam.identities import Caller, IdentityService, NewKey
from pails.meta.iam_models import AccessKey, Group, Role, User

Params = dict[str, str]
Action = Callable[[IdentityService, Caller, Params], Awaitable[str | None]]


def user_xml(user: User) -> str:
    arn = user.arn if user.name else f"arn:aws:iam::{user.account_id}:root"
    return fields(
        {
            "Path": user.path,
            "UserName": user.name or None,
            "UserId": user.user_id,
            "Arn": arn,
            "CreateDate": iso8601(user.created_at),
        }
    )


def group_xml(group: Group) -> str:
    return fields(
        {
            "Path": group.path,
            "GroupName": group.name,
            "GroupId": group.group_id,
            "Arn": group.arn,
            "CreateDate": iso8601(group.created_at),
        }
    )


def role_xml(role: Role) -> str:
    return fields(
        {
            "Path": role.path,
            "RoleName": role.name,
            "RoleId": role.role_id,
            "Arn": role.arn,
            "CreateDate": iso8601(role.created_at),
            "AssumeRolePolicyDocument": policy_text(role.trust_policy),
            "Description": role.description or None,
            "MaxSessionDuration": role.max_session_duration,
        }
    )


def key_xml(key: AccessKey, user_name: str | None, secret: str | None = None) -> str:
    return fields(
        {
            "UserName": user_name,
            "AccessKeyId": key.access_key_id,
            "Status": key.status,
            "SecretAccessKey": secret,
            "CreateDate": iso8601(key.created_at),
        }
    )


def _new_key_xml(new: NewKey) -> str:
    return f"<AccessKey>{key_xml(new.key, new.user_name, new.secret)}</AccessKey>"


_DEFAULT_MAX_ITEMS = 100
_MAX_ITEMS_LIMIT = 1000
_MARKER_PREFIX = "pails:"


def _page(name: str, items: list[str], p: Params) -> str:
    """One page of a list, as IAM pages them: at most MaxItems (1 to 1000, default 100) items
    from Marker on; IsTruncated and the next Marker tell a client (boto3's paginators) to go on.
    The marker is opaque to clients: the position of the next item."""
    start = _marker_offset(p.get("Marker"))
    end = start + _max_items(p.get("MaxItems"))
    out = members(name, items[start:end])
    if end < len(items):
        return out + f"<IsTruncated>true</IsTruncated><Marker>{_marker(end)}</Marker>"
    return out + "<IsTruncated>false</IsTruncated>"


def _max_items(value: str | None) -> int:
    if value is None:
        return _DEFAULT_MAX_ITEMS
    if not value.isdigit() or not 1 <= int(value) <= _MAX_ITEMS_LIMIT:
        raise validation(
            f"1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy constraint: "
            f"Member must have value between 1 and {_MAX_ITEMS_LIMIT}"
        )
    return int(value)


def _marker(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_MARKER_PREFIX}{offset}".encode()).decode()


def _marker_offset(value: str | None) -> int:
    if value is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(value.encode()).decode()
    except (ValueError, UnicodeError):
        text = ""
    offset = text.removeprefix(_MARKER_PREFIX)
    if not text.startswith(_MARKER_PREFIX) or not offset.isdigit():
        raise validation("Invalid Marker.")
    return int(offset)


# -- users ------------------------------------------------------------------------------------


async def create_user(svc: IdentityService, caller: Caller, p: Params) -> str:
    user = await svc.create_user(caller, p.get("UserName"), p.get("Path"))
    return f"<User>{user_xml(user)}</User>"


async def get_user(svc: IdentityService, caller: Caller, p: Params) -> str:
    return f"<User>{user_xml(await svc.get_user(caller, p.get('UserName')))}</User>"


async def list_users(svc: IdentityService, caller: Caller, p: Params) -> str:
    users = await svc.list_users(caller, p.get("PathPrefix"))
    return _page("Users", [user_xml(u) for u in users], p)


async def delete_user(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.delete_user(caller, p.get("UserName"))


# -- access keys ------------------------------------------------------------------------------


async def create_access_key(svc: IdentityService, caller: Caller, p: Params) -> str:
    return _new_key_xml(await svc.create_access_key(caller, p.get("UserName")))


async def list_access_keys(svc: IdentityService, caller: Caller, p: Params) -> str:
    user, keys = await svc.list_access_keys(caller, p.get("UserName"))
    name = user.name if user else None
    body = _page("AccessKeyMetadata", [key_xml(k, name) for k in keys], p)
    return body + fields({"UserName": name})


async def update_access_key(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.update_access_key(caller, p.get("UserName"), p.get("AccessKeyId"), p.get("Status"))


async def delete_access_key(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.delete_access_key(caller, p.get("UserName"), p.get("AccessKeyId"))


# -- inline policies (users, groups, roles) ---------------------------------------------------


def _policy_actions(kind: str, name_param: str) -> dict[str, Action]:
    title = kind.capitalize()

    async def put(svc: IdentityService, caller: Caller, p: Params) -> None:
        await svc.put_policy(caller, kind, p.get(name_param), p.get("PolicyName"), p.get("PolicyDocument"))

    async def get(svc: IdentityService, caller: Caller, p: Params) -> str:
        owner, document = await svc.get_policy(caller, kind, p.get(name_param), p.get("PolicyName"))
        return fields({name_param: owner, "PolicyName": p.get("PolicyName")}) + (
            f"<PolicyDocument>{policy_text(document)}</PolicyDocument>"
        )

    async def delete(svc: IdentityService, caller: Caller, p: Params) -> None:
        await svc.delete_policy(caller, kind, p.get(name_param), p.get("PolicyName"))

    async def list_(svc: IdentityService, caller: Caller, p: Params) -> str:
        names = await svc.list_policies(caller, kind, p.get(name_param))
        return _page("PolicyNames", [escape(n) for n in names], p)

    return {
        f"Put{title}Policy": put,
        f"Get{title}Policy": get,
        f"Delete{title}Policy": delete,
        f"List{title}Policies": list_,
    }


# -- groups -----------------------------------------------------------------------------------


async def create_group(svc: IdentityService, caller: Caller, p: Params) -> str:
    group = await svc.create_group(caller, p.get("GroupName"), p.get("Path"))
    return f"<Group>{group_xml(group)}</Group>"


async def get_group(svc: IdentityService, caller: Caller, p: Params) -> str:
    group, users = await svc.get_group(caller, p.get("GroupName"))
    return f"<Group>{group_xml(group)}</Group>" + _page("Users", [user_xml(u) for u in users], p)


async def list_groups(svc: IdentityService, caller: Caller, p: Params) -> str:
    return _page("Groups", [group_xml(g) for g in await svc.list_groups(caller)], p)


async def list_groups_for_user(svc: IdentityService, caller: Caller, p: Params) -> str:
    groups = await svc.list_groups_for_user(caller, p.get("UserName"))
    return _page("Groups", [group_xml(g) for g in groups], p)


async def add_user_to_group(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.add_user_to_group(caller, p.get("GroupName"), p.get("UserName"))


async def remove_user_from_group(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.remove_user_from_group(caller, p.get("GroupName"), p.get("UserName"))


async def delete_group(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.delete_group(caller, p.get("GroupName"))


# -- roles ------------------------------------------------------------------------------------


async def create_role(svc: IdentityService, caller: Caller, p: Params) -> str:
    role = await svc.create_role(
        caller,
        p.get("RoleName"),
        p.get("Path"),
        p.get("AssumeRolePolicyDocument"),
        p.get("MaxSessionDuration"),
        p.get("Description"),
    )
    return f"<Role>{role_xml(role)}</Role>"


async def get_role(svc: IdentityService, caller: Caller, p: Params) -> str:
    return f"<Role>{role_xml(await svc.get_role(caller, p.get('RoleName')))}</Role>"


async def list_roles(svc: IdentityService, caller: Caller, p: Params) -> str:
    roles = await svc.list_roles(caller, p.get("PathPrefix"))
    return _page("Roles", [role_xml(r) for r in roles], p)


async def delete_role(svc: IdentityService, caller: Caller, p: Params) -> None:
    await svc.delete_role(caller, p.get("RoleName"))


ACTIONS: dict[str, Action] = {
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "DeleteUser": delete_user,
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
    **_policy_actions("user", "UserName"),
    **_policy_actions("group", "GroupName"),
    **_policy_actions("role", "RoleName"),
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "ListGroupsForUser": list_groups_for_user,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "DeleteGroup": delete_group,
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
}
