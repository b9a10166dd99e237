"""Bucket policy, ACLs (bucket and object) and PublicAccessBlock: ?policy, ?policyStatus, ?acl,
?publicAccessBlock."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from pails.api import xml
from pails.api.authz import header_acl
from pails.api.context import RequestContext
from pails.api.handlers.common import read_small_body, version_id_headers, xml_response
from pails.api.handlers.post_object import post_object
from pails.api.http import Response, StreamResponse
from pails.errors import S3Error
from pails.iam.acl import GROUPS, PERMISSIONS, Acl, Grant
from pails.iam.policy import BUCKET_POLICY_MAX_BYTES
from pails.iam.public import PAB_FIELDS, PublicAccessBlock
from pails.service.objects import check_version_id

_XSI = "http://www.w3.org/2001/XMLSchema-instance"

# ------------------------------------------------------------------ policy


async def put_bucket_policy(ctx: RequestContext) -> StreamResponse:
    length = ctx.request.content_length
    if length is not None and length > BUCKET_POLICY_MAX_BYTES:
        raise S3Error(
            "MalformedPolicy",
            f"Policies must be no more than {BUCKET_POLICY_MAX_BYTES} bytes (this one is {length})",
            status=400,
        )
    body = await read_small_body(ctx, limit=BUCKET_POLICY_MAX_BYTES)
    await ctx.services.access.put_policy(ctx.bucket_name, body)
    return Response(status=204)


async def get_bucket_policy(ctx: RequestContext) -> StreamResponse:
    text = await ctx.services.access.get_policy(ctx.bucket_name)
    return Response(body=text.encode("utf-8"), headers={"Content-Type": "application/json"})


async def delete_bucket_policy(ctx: RequestContext) -> StreamResponse:
    await ctx.services.access.delete_policy(ctx.bucket_name)
    return Response(status=204)


async def get_bucket_policy_status(ctx: RequestContext) -> StreamResponse:
    public = await ctx.services.access.policy_status(ctx.bucket_name)
    return xml_response(
        xml.document("PolicyStatus", [xml.element("IsPublic", "true" if public else "false")])
    )


# ------------------------------------------------------------------ ACLs


def acl_document(acl: Acl, display_name: str = "") -> bytes:
    parts = [
        "<Owner>",
        xml.element("ID", acl.owner_id),
        xml.element("DisplayName", acl.owner_name or display_name),
        "</Owner><AccessControlList>",
    ]
    for grant in acl.grants:
        parts.append(f'<Grant><Grantee xmlns:xsi="{_XSI}" xsi:type="{grant.kind}">')
        if grant.kind == "Group":
            parts.append(xml.element("URI", grant.grantee))
        else:
            parts.append(xml.element("ID", grant.grantee))
        parts.append("</Grantee>" + xml.element("Permission", grant.permission) + "</Grant>")
    parts.append("</AccessControlList>")
    return xml.document("AccessControlPolicy", parts)


def _malformed_acl(message: str = "The XML you provided was not well-formed or did not validate "
                   "against our published schema") -> S3Error:  # fmt: skip
    return S3Error("MalformedACLError", message, status=400)


def _grantee(node: Element) -> tuple[str, str]:
    kind = ""
    for name, value in node.attrib.items():
        if xml.local_name(name) == "type":
            kind = value
    uri, grantee_id, email = (
        xml.text_of(node, "URI"),
        xml.text_of(node, "ID"),
        xml.text_of(node, "EmailAddress"),
    )
    if email is not None or kind == "AmazonCustomerByEmail":
        raise S3Error(
            "UnresolvableGrantByEmailAddress",
            "The email address you provided does not match any account on record.",
            status=400,
        )
    if kind == "Group" or (not kind and uri is not None):
        if uri is None or uri.strip() not in GROUPS:
            raise _malformed_acl(f"Invalid group URI {uri!r}")
        return "Group", uri.strip()
    if kind in ("CanonicalUser", "") and grantee_id is not None and grantee_id.strip():
        return "CanonicalUser", grantee_id.strip()
    raise _malformed_acl()


def parse_acl_document(body: bytes, owner_id: str, owner_name: str) -> Acl:
    """<AccessControlPolicy><Owner/><AccessControlList><Grant>... -> an ACL owned by `owner_id`."""
    root = xml.parse(body)
    if xml.local_name(root.tag) != "AccessControlPolicy":
        raise _malformed_acl()
    owner = xml.child(root, "Owner")
    if owner is not None:
        stated = xml.text_of(owner, "ID")
        if stated is not None and stated.strip() and stated.strip() != owner_id:
            raise S3Error("AccessDenied", "The owner of an ACL cannot be changed")
    listing = xml.child(root, "AccessControlList")
    if listing is None:
        raise _malformed_acl()
    grants: list[Grant] = []
    for node in listing:
        if xml.local_name(node.tag) != "Grant":
            raise _malformed_acl()
        grantee = xml.child(node, "Grantee")
        permission = (xml.text_of(node, "Permission") or "").strip()
        if grantee is None or permission not in PERMISSIONS:
            raise _malformed_acl()
        kind, who = _grantee(grantee)
        grants.append(Grant(kind, who, permission))
    if len(grants) > 100:
        raise _malformed_acl("An ACL holds at most 100 grants")
    return Acl(owner_id, tuple(grants), owner_name)


async def _new_acl(ctx: RequestContext, owner_id: str, owner_name: str, bucket_owner: str) -> Acl:
    """A Put*Acl request's ACL: headers (x-amz-acl / x-amz-grant-*) or an XML body, not both."""
    from_headers = header_acl(ctx, owner_id, owner_name, bucket_owner)
    body = await read_small_body(ctx)
    if from_headers is not None:
        if body.strip():
            raise S3Error("UnexpectedContent", "This request does not support content", status=400)
        return from_headers
    if not body.strip():
        raise S3Error("MissingSecurityHeader", "Your request was missing a required header",
                      extra={"MissingHeaderName": "x-amz-acl"})  # fmt: skip
    return parse_acl_document(body, owner_id, owner_name)


async def get_bucket_acl(ctx: RequestContext) -> StreamResponse:
    auth = await ctx.services.access.existing(ctx.bucket_name)
    return xml_response(acl_document(auth.acl))


async def put_bucket_acl(ctx: RequestContext) -> StreamResponse:
    auth = await ctx.services.access.existing(ctx.bucket_name)
    acl = await _new_acl(ctx, auth.owner_id, auth.acl.owner_name, auth.owner_id)
    await ctx.services.access.put_bucket_acl(ctx.bucket_name, acl)
    return Response()


async def get_object_acl(ctx: RequestContext) -> StreamResponse:
    auth = await ctx.services.access.existing(ctx.bucket_name)
    requested = ctx.query.get("versionId")
    if requested is not None:
        check_version_id(requested)
    obj = await ctx.services.access.get_object(auth, ctx.key, requested)
    if obj is None:
        if requested is not None:
            raise S3Error("NoSuchVersion", extra={"Key": ctx.key, "VersionId": requested})
        raise S3Error("NoSuchKey", extra={"Key": ctx.key})
    response = xml_response(acl_document(ctx.services.access.object_acl(auth, obj)))
    response.headers.update(version_id_headers(requested, obj.version_id))
    return response


async def put_object_acl(ctx: RequestContext) -> StreamResponse:
    auth = await ctx.services.access.existing(ctx.bucket_name)
    requested = ctx.query.get("versionId")
    if requested is not None:
        check_version_id(requested)
    obj = await ctx.services.access.get_object(auth, ctx.key, requested)
    if obj is None:
        if requested is not None:
            raise S3Error("NoSuchVersion", extra={"Key": ctx.key, "VersionId": requested})
        raise S3Error("NoSuchKey", extra={"Key": ctx.key})
    current = ctx.services.access.object_acl(auth, obj)
    acl = await _new_acl(ctx, current.owner_id, current.owner_name, auth.owner_id)
    version_id = await ctx.services.access.put_object_acl(auth, ctx.key, obj.version_id, acl)
    return Response(headers=version_id_headers(requested, version_id))


# ------------------------------------------------------------------ PublicAccessBlock


async def get_public_access_block(ctx: RequestContext) -> StreamResponse:
    config = await ctx.services.access.get_public_access_block(ctx.bucket_name)
    parts = [
        xml.element(name, "true" if value else "false")
        for name, value in zip(PAB_FIELDS, config.values(), strict=True)
    ]
    return xml_response(xml.document("PublicAccessBlockConfiguration", parts))


async def put_public_access_block(ctx: RequestContext) -> StreamResponse:
    root = xml.parse(await read_small_body(ctx))
    if xml.local_name(root.tag) != "PublicAccessBlockConfiguration":
        raise S3Error("MalformedXML")
    values: list[bool] = []
    for name in PAB_FIELDS:
        text = xml.text_of(root, name)
        if text is None:
            values.append(False)
            continue
        text = text.strip().lower()
        if text not in ("true", "false"):
            raise S3Error("MalformedXML")
        values.append(text == "true")
    for node in root:
        if xml.local_name(node.tag) not in PAB_FIELDS:
            raise S3Error("MalformedXML")
    await ctx.services.access.put_public_access_block(ctx.bucket_name, PublicAccessBlock(*values))
    return Response()


async def delete_public_access_block(ctx: RequestContext) -> StreamResponse:
    await ctx.services.access.delete_public_access_block(ctx.bucket_name)
    return Response(status=204)


HANDLERS = {
    "GetBucketPolicy": get_bucket_policy,
    "PutBucketPolicy": put_bucket_policy,
    "DeleteBucketPolicy": delete_bucket_policy,
    "GetBucketPolicyStatus": get_bucket_policy_status,
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "GetObjectAcl": get_object_acl,
    "PutObjectAcl": put_object_acl,
    "GetPublicAccessBlock": get_public_access_block,
    "PutPublicAccessBlock": put_public_access_block,
    "DeletePublicAccessBlock": delete_public_access_block,
    "PostObject": post_object,
}
