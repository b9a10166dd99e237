"""S3 access control lists: the model, canned ACLs, x-amz-grant-* headers, and what a grant permits.

Pure (no I/O). An ACL is stored as JSON with its bucket (buckets.acl) or object version
(objects.acl); a missing ACL means "private": the owner has FULL_CONTROL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
PUBLIC_GROUPS = (ALL_USERS, AUTHENTICATED_USERS)

PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")

CANNED = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
)

GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}


class AclError(ValueError):
    """A canned ACL name, grant header or ACL document is invalid: `code` is the S3 error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Grant:
    kind: str  # "CanonicalUser" or "Group"
    grantee: str  # canonical user id, or group URI
    permission: str


@dataclass(frozen=True, slots=True)
class Acl:
    owner_id: str
    grants: tuple[Grant, ...]
    owner_name: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "owner": self.owner_id,
                "owner_name": self.owner_name,
                "grants": [[g.kind, g.grantee, g.permission] for g in self.grants],
            },
            separators=(",", ":"),
        )

    @property
    def is_public(self) -> bool:
        return any(g.kind == "Group" and g.grantee in PUBLIC_GROUPS for g in self.grants)

    def without_public_grants(self) -> Acl:
        kept = tuple(g for g in self.grants if not (g.kind == "Group" and g.grantee in PUBLIC_GROUPS))
        return Acl(self.owner_id, kept, self.owner_name)


def private(owner_id: str, owner_name: str = "") -> Acl:
    return Acl(owner_id, (Grant("CanonicalUser", owner_id, "FULL_CONTROL"),), owner_name)


def acl_from_json(text: str | None, default_owner: str, default_owner_name: str = "") -> Acl:
    """The stored ACL; None or empty text is the default private ACL of `default_owner`."""
    if not text:
        return private(default_owner, default_owner_name)
    raw = json.loads(text)
    return Acl(
        owner_id=raw["owner"],
        owner_name=raw.get("owner_name", ""),
        grants=tuple(Grant(kind, grantee, permission) for kind, grantee, permission in raw["grants"]),
    )


def canned(name: str, owner_id: str, owner_name: str = "", bucket_owner: str | None = None) -> Acl:
    """A canned ACL (x-amz-acl). `bucket_owner` is the bucket's owner, for bucket-owner-* on objects."""
    owner = Grant("CanonicalUser", owner_id, "FULL_CONTROL")
    grants: list[Grant] = [owner]
    if name == "private":
        pass
    elif name == "public-read":
        grants.append(Grant("Group", ALL_USERS, "READ"))
    elif name == "public-read-write":
        grants += [Grant("Group", ALL_USERS, "READ"), Grant("Group", ALL_USERS, "WRITE")]
    elif name == "authenticated-read":
        grants.append(Grant("Group", AUTHENTICATED_USERS, "READ"))
    elif name == "aws-exec-read":
        pass  # EC2 reads AMI bundles: no such reader here, so the owner alone
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        if bucket_owner is not None and bucket_owner != owner_id:
            permission = "READ" if name == "bucket-owner-read" else "FULL_CONTROL"
            grants.append(Grant("CanonicalUser", bucket_owner, permission))
    elif name == "log-delivery-write":
        grants += [Grant("Group", LOG_DELIVERY, "WRITE"), Grant("Group", LOG_DELIVERY, "READ_ACP")]
    else:
        raise AclError("InvalidArgument", f"Invalid canned ACL {name!r}.")
    return Acl(owner_id, tuple(grants), owner_name)


_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*(?:,|$)', re.IGNORECASE)


def parse_grant_header(value: str, permission: str) -> list[Grant]:
    """'id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers"' -> grants."""
    grants: list[Grant] = []
    pos = 0
    text = value.strip()
    while pos < len(text):
        match = _GRANTEE.match(text, pos)
        if match is None or match.end() == pos:
            raise AclError("InvalidArgument", f"Invalid grant header value {value!r}.")
        kind, grantee = match.group(1).lower(), match.group(2).strip()
        pos = match.end()
        if not grantee:
            raise AclError("InvalidArgument", f"Invalid grant header value {value!r}.")
        if kind == "emailaddress":
            raise AclError(
                "UnresolvableGrantByEmailAddress",
                "The email address you provided does not match any account on record.",
            )
        if kind == "uri":
            if grantee not in GROUPS:
                raise AclError("InvalidArgument", f"Invalid group uri {grantee!r}.")
            grants.append(Grant("Group", grantee, permission))
        else:
            grants.append(Grant("CanonicalUser", grantee, permission))
    return grants


def from_headers(
    headers: Mapping[str, str], owner_id: str, owner_name: str = "", bucket_owner: str | None = None
) -> Acl | None:
    """The ACL that x-amz-acl or x-amz-grant-* headers ask for; None when neither is present."""
    canned_name = headers.get("x-amz-acl")
    grant_values = {name: headers[name] for name in GRANT_HEADERS if headers.get(name) is not None}
    if canned_name is not None and grant_values:
        raise AclError("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    if canned_name is not None:
        return canned(canned_name.strip(), owner_id, owner_name, bucket_owner)
    if not grant_values:
        return None
    grants: list[Grant] = []
    for name, value in grant_values.items():
        grants += parse_grant_header(value, GRANT_HEADERS[name])
    return Acl(owner_id, tuple(grants), owner_name)


# What each ACL permission allows, by the kind of resource the ACL is attached to (as AWS maps
# ACL permissions to policy actions). FULL_CONTROL allows all four.
_BUCKET_PERMISSIONS = {
    "READ": frozenset({"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"}),
    "WRITE": frozenset(
        {
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        }
    ),
    "READ_ACP": frozenset({"s3:GetBucketAcl"}),
    "WRITE_ACP": frozenset({"s3:PutBucketAcl"}),
}
_OBJECT_PERMISSIONS = {
    "READ": frozenset({"s3:GetObject", "s3:GetObjectVersion"}),
    "WRITE": frozenset(),
    "READ_ACP": frozenset({"s3:GetObjectAcl", "s3:GetObjectVersionAcl"}),
    "WRITE_ACP": frozenset({"s3:PutObjectAcl", "s3:PutObjectVersionAcl"}),
}


def permits(permission: str, action: str, on_object: bool) -> bool:
    table = _OBJECT_PERMISSIONS if on_object else _BUCKET_PERMISSIONS
    if permission == "FULL_CONTROL":
        return any(action in actions for actions in table.values())
    return action in table.get(permission, frozenset())


def bucket_acl_covers(action: str) -> bool:
    """Whether a bucket ACL can grant this action at all (else only an object ACL can)."""
    return permits("FULL_CONTROL", action, False)


def object_acl_covers(action: str) -> bool:
    return permits("FULL_CONTROL", action, True)
