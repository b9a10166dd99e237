"""Bucket-level S3 operations."""

from __future__ import annotations

from pails.api import xml
from pails.api.authz import header_acl
from pails.api.context import RequestContext
from pails.api.handlers.common import read_small_body, xml_response
from pails.api.http import Response, StreamResponse
from pails.errors import S3Error


async def list_buckets(ctx: RequestContext) -> StreamResponse:
    assert ctx.identity is not None
    owned = await ctx.services.buckets.list(ctx.identity)
    region = ctx.services.settings.region
    parts = [
        "<Owner>",
        xml.element("ID", ctx.identity.canonical_id),
        xml.element("DisplayName", ctx.identity.display_name),
        "</Owner><Buckets>",
    ]
    for bucket in owned:
        parts.append(
            "<Bucket>"
            + xml.element("Name", bucket.name)
            + xml.element("CreationDate", xml.iso8601(bucket.created_at))
            + xml.element("BucketRegion", bucket.region or region)
            + "</Bucket>"
        )
    parts.append("</Buckets>")
    return xml_response(xml.document("ListAllMyBucketsResult", parts))


async def create_bucket(ctx: RequestContext) -> StreamResponse:
    assert ctx.identity is not None
    body = await read_small_body(ctx)
    location: str | None = None
    if body.strip():
        root = xml.parse(body)
        if xml.local_name(root.tag) != "CreateBucketConfiguration":
            raise S3Error("MalformedXML")
        location = xml.text_of(root, "LocationConstraint")
        if location is not None:
            location = location.strip()
    acl = header_acl(ctx, ctx.identity.canonical_id, ctx.identity.display_name)
    await ctx.services.buckets.create(ctx.bucket_name, ctx.identity, location)
    await ctx.services.access.changed(ctx.bucket_name)
    if acl is not None:
        await ctx.services.access.put_bucket_acl(ctx.bucket_name, acl)
    return Response(headers={"Location": f"/{ctx.bucket_name}"})


async def head_bucket(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    return Response(headers={"x-amz-bucket-region": bucket.region, "x-amz-access-point-alias": "false"})


async def delete_bucket(ctx: RequestContext) -> StreamResponse:
    try:
        await ctx.services.buckets.delete(ctx.bucket_name)
    finally:
        await ctx.services.access.changed(ctx.bucket_name)
    return Response(status=204)


async def get_bucket_location(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    # us-east-1 is reported as an empty LocationConstraint, as S3 does.
    region = "" if bucket.region == "us-east-1" else bucket.region
    body = xml.XML_DECL + f'<LocationConstraint xmlns="{xml.S3_NS}">{xml.escape(region)}</LocationConstraint>'
    return xml_response(body.encode())
