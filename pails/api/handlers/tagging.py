"""Object and bucket tagging: GET/PUT/DELETE /bucket/key?tagging and /bucket?tagging."""

from __future__ import annotations

from pails.api import xml
from pails.api.context import RequestContext
from pails.api.handlers.common import read_small_body, version_id_headers, xml_response
from pails.api.http import Response, StreamResponse
from pails.errors import S3Error
from pails.service.tagging import MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, validate_tags


def parse_tagging(body: bytes, *, limit: int) -> dict[str, str]:
    """<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging> -> a validated tag map."""
    root = xml.parse(body)
    if xml.local_name(root.tag) != "Tagging":
        raise S3Error("MalformedXML")
    tag_set = xml.child(root, "TagSet")
    if tag_set is None:
        raise S3Error("MalformedXML")
    pairs: list[tuple[str, str]] = []
    for tag in tag_set:
        if xml.local_name(tag.tag) != "Tag":
            raise S3Error("MalformedXML")
        key, value = xml.text_of(tag, "Key"), xml.text_of(tag, "Value")
        if key is None or value is None:
            raise S3Error("MalformedXML")
        pairs.append((key, value))
    return validate_tags(pairs, limit=limit)


def tagging_document(tags: dict[str, str]) -> bytes:
    tag_xml = "".join(
        "<Tag>" + xml.element("Key", key) + xml.element("Value", value) + "</Tag>"
        for key, value in tags.items()
    )
    return xml.document("Tagging", ["<TagSet>", tag_xml, "</TagSet>"])


async def get_object_tagging(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    requested = ctx.query.get("versionId")
    obj = await ctx.services.tagging.object_tags(bucket, ctx.key, requested)
    response = xml_response(tagging_document(obj.tags))
    response.headers.update(version_id_headers(requested, obj.version_id))
    return response


async def put_object_tagging(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    requested = ctx.query.get("versionId")
    tags = parse_tagging(await read_small_body(ctx), limit=MAX_OBJECT_TAGS)
    version_id = await ctx.services.tagging.set_object_tags(bucket, ctx.key, requested, tags)
    return Response(headers=version_id_headers(requested, version_id))


async def delete_object_tagging(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    requested = ctx.query.get("versionId")
    version_id = await ctx.services.tagging.set_object_tags(bucket, ctx.key, requested, {})
    return Response(status=204, headers=version_id_headers(requested, version_id))


async def get_bucket_tagging(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    return xml_response(tagging_document(await ctx.services.tagging.bucket_tags(bucket)))


async def put_bucket_tagging(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    tags = parse_tagging(await read_small_body(ctx), limit=MAX_BUCKET_TAGS)
    await ctx.services.tagging.set_bucket_tags(bucket, tags)
    return Response(status=204)


async def delete_bucket_tagging(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    await ctx.services.tagging.set_bucket_tags(bucket, None)
    return Response(status=204)
