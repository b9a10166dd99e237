"""x-amz-expected-bucket-owner (and x-amz-source-expected-bucket-owner for copies): a request
that names the account it expects to own the bucket fails with 403 when another account does."""

from __future__ import annotations

from pails.api.context import RequestContext
from pails.errors import S3Error
from pails.meta.models import Bucket

EXPECTED_OWNER = "x-amz-expected-bucket-owner"
SOURCE_EXPECTED_OWNER = "x-amz-source-expected-bucket-owner"

# CreateBucket has no owner to compare with yet; ListBuckets names no bucket.
_EXEMPT = frozenset({"CreateBucket", "ListBuckets"})


def check_owner(ctx: RequestContext, bucket: Bucket, header: str = EXPECTED_OWNER) -> None:
    expected = ctx.request.lower_headers.get(header)
    if expected is None:
        return
    if ctx.services.credentials.account_of(bucket.owner_id) != expected.strip():
        raise S3Error("AccessDenied")


async def check_expected_bucket_owner(ctx: RequestContext) -> None:
    """Called once a request carrying the header is authenticated (check_owner ignores a request
    without it; the caller skips those, to spare the coroutine)."""
    if ctx.endpoint.operation in _EXEMPT or ctx.endpoint.bucket is None:
        return
    check_owner(ctx, await ctx.services.buckets.get(ctx.endpoint.bucket))
