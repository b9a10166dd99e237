"""PutBucketVersioning and GetBucketVersioning (GET/PUT /bucket?versioning)."""

from __future__ import annotations

from pails.api import xml
from pails.api.context import RequestContext
from pails.api.handlers.common import read_small_body, xml_response
from pails.api.http import Response, StreamResponse
from pails.errors import S3Error
from pails.meta.rules import VERSIONING_STATES


async def put_bucket_versioning(ctx: RequestContext) -> StreamResponse:
    bucket_name = ctx.bucket_name
    await ctx.services.buckets.get(bucket_name)
    root = xml.parse(await read_small_body(ctx))
    if xml.local_name(root.tag) != "VersioningConfiguration":
        raise S3Error("MalformedXML")
    status = xml.text_of(root, "Status")
    if status is None or status.strip() not in VERSIONING_STATES:
        raise S3Error("MalformedXML")
    mfa_delete = xml.text_of(root, "MfaDelete")
    if mfa_delete is not None and mfa_delete.strip() not in ("Disabled", "Enabled"):
        raise S3Error("MalformedXML")
    if mfa_delete is not None and mfa_delete.strip() == "Enabled":
        raise S3Error("NotImplemented", "Pails does not implement MFA delete.")
    await ctx.services.buckets.set_versioning(bucket_name, status.strip())
    return Response()


async def get_bucket_versioning(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    parts = [xml.element("Status", bucket.versioning)] if bucket.versioning else []
    return xml_response(xml.document("VersioningConfiguration", parts))
