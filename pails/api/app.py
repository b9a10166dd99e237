"""The S3 HTTP front: parse, authenticate, dispatch to a handler, render S3 errors, count metrics."""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from pails.api.auth import authenticate
from pails.api.authz import authorize, authorized_now, hide_missing_key
from pails.api.context import RequestContext
from pails.api.handlers import access as access_handlers
from pails.api.handlers import (
    admin,
    attributes,
    buckets,
    copy,
    listing,
    multipart,
    objects,
    tagging,
    versions,
)
from pails.api.handlers import query as query_api
from pails.api.handlers import versioning as versioning_handlers
from pails.api.http import Request, Response, StreamResponse, json_response
from pails.api.owner import EXPECTED_OWNER, check_expected_bucket_owner
from pails.api.router import resolve, with_copy_source
from pails.api.xml import error_document
from pails.config import Settings
from pails.errors import S3Error
from pails.iam.directory import CredentialStore
from pails.iam.identities import IdentityService
from pails.iam.sts import StsService
from pails.meta.unavailable import MetadataUnavailableError
from pails.obs.metrics import Metrics
from pails.service.access import AccessService
from pails.service.buckets import BucketService
from pails.service.copy import CopyService
from pails.service.gc import GarbageCollector
from pails.service.multipart import MultipartService
from pails.service.objects import ObjectService
from pails.service.peers import Peers
from pails.service.tagging import TaggingService

if TYPE_CHECKING:
    from pails.gateway import ClusterRuntime

log = logging.getLogger("pails.api")

Handler = Callable[[RequestContext], Awaitable[StreamResponse]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "ListObjects": listing.list_objects_v1,
    "ListObjectsV2": listing.list_objects_v2,
    "DeleteObjects": objects.delete_objects,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.get_object,
    "DeleteObject": objects.delete_object,
    "CopyObject": copy.copy_object,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": copy.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "GetObjectAttributes": attributes.get_object_attributes,
    "ListObjectVersions": versions.list_object_versions,
    "GetBucketVersioning": versioning_handlers.get_bucket_versioning,
    "PutBucketVersioning": versioning_handlers.put_bucket_versioning,
    "GetObjectTagging": tagging.get_object_tagging,
    "PutObjectTagging": tagging.put_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
}
HANDLERS.update(access_handlers.HANDLERS)

_PLAIN_PATHS = {"/health/live", "/health/ready", "/metrics"}
_METADATA_UNAVAILABLE = S3Error("ServiceUnavailable", "The metadata store is unreachable. Please try again.")


@dataclass(slots=True)
class Services:
    settings: Settings
    credentials: CredentialStore
    buckets: BucketService
    objects: ObjectService
    multipart: MultipartService
    copies: CopyService
    gc: GarbageCollector
    metrics: Metrics
    tagging: TaggingService
    access: AccessService
    iam: IdentityService
    sts: StsService
    ready: bool = False
    peers: Peers | None = None
    """The other workers (pails server --workers N > 1), for admin operations on the whole store."""
    metadata_ping: Callable[[], Awaitable[None]] | None = None
    """Raises MetadataUnavailableError when the metadata database does not answer (/health/ready)."""
    cluster: ClusterRuntime | None = None
    """The cluster of a `pails gateway` (membership, health, background jobs); None on a server."""


_REQUEST_ID_PREFIX = secrets.token_hex(4).upper()
_request_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique per process start: a random prefix and a counter (no syscall per request)."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_counter):08X}"


def error_response(error: S3Error, request_id: str, resource: str, head: bool) -> Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id, **error.headers}
    if head or error.status == 304:
        return Response(status=error.status, headers=headers)
    body = error_document(error.code, error.message, error.resource or resource, request_id, error.extra)
    headers["Content-Type"] = "application/xml"
    return Response(status=error.status, body=body, headers=headers)


def _check_expect(value: str) -> None:
    """HTTP/1.1 defines one expectation; any other is refused before the body is read (RFC 9110)."""
    if value.strip().lower() != "100-continue":
        raise S3Error(
            "ExpectationFailed",
            "The expectation given in the Expect request header could not be met.",
            status=417,
            extra={"Expect": value},
        )


class S3Application:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._domain = services.settings.domain
        self._region = services.settings.region

    async def handle(self, request: Request) -> StreamResponse:
        started = time.perf_counter()
        request_id = new_request_id()
        target = request.raw_path
        raw_path, _, raw_query = target.partition("?")
        if raw_path in _PLAIN_PATHS and "authorization" not in request.lower_headers and not raw_query:
            return await self._plain(raw_path)
        if raw_path.startswith(admin.PREFIX):
            return await self._admin(request, raw_path, raw_query, request_id)
        service = query_api.query_service(request, raw_query)
        if service is not None:
            return await query_api.handle(self.services, service, request, raw_path, raw_query, request_id)
        api = "Unknown"
        ctx: RequestContext | None = None
        error: S3Error | None = None
        try:
            query = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
            lower = request.lower_headers
            endpoint = resolve(request.method, request.host, raw_path, query, self._domain)
            if "x-amz-copy-source" in lower:
                endpoint = with_copy_source(endpoint)
            api = endpoint.operation
            ctx = RequestContext(request, endpoint, request_id, raw_query, query, self.services)
            if "expect" in lower:
                _check_expect(lower["expect"])
            ctx.identity, ctx.auth, ctx.signing_key = await authenticate(
                request, raw_path, raw_query, self.services.credentials, self._region, domain=self._domain
            )
            unchecked = authorized_now(ctx)
            if unchecked:
                await authorize(ctx, unchecked)
            if EXPECTED_OWNER in lower:  # without the header nothing is checked: no coroutine
                await check_expected_bucket_owner(ctx)
            response = await HANDLERS[api](ctx)
            response.headers["x-amz-request-id"] = request_id
            response.headers["x-amz-id-2"] = request_id
            if ctx.bytes_in:
                self.services.metrics.bytes_in.inc(ctx.bytes_in)
        except S3Error as exc:
            error = await hide_missing_key(ctx, exc) if ctx is not None and exc.code == "NoSuchKey" else exc
        except MetadataUnavailableError as exc:
            log.warning(
                "metadata unavailable in %s %s (request %s): %s", request.method, raw_path, request_id, exc
            )
            error = _METADATA_UNAVAILABLE
        except ConnectionResetError:
            raise
        except Exception:
            log.exception("internal error in %s %s (request %s)", request.method, raw_path, request_id)
            error = S3Error("InternalError")
        if error is not None:
            resource = ctx.resource if ctx is not None else raw_path
            response = error_response(error, request_id, resource, request.method == "HEAD")
        status = response.status
        self.services.metrics.observe(api, status, time.perf_counter() - started)
        return response

    async def _plain(self, path: str) -> Response:
        if path == "/metrics":
            return Response(body=await self.services.metrics.scrape(), content_type="text/plain")
        if path == "/health/ready" and not self._ready():
            return json_response({"status": "starting"}, status=503)
        if path == "/health/ready" and self.services.metadata_ping is not None:
            try:
                await self.services.metadata_ping()
            except MetadataUnavailableError:
                return json_response({"status": "metadata unavailable"}, status=503)
        return json_response({"status": "ok"})

    def _ready(self) -> bool:
        """This worker serves, and so does every other worker of its group (--workers N)."""
        peers = self.services.peers
        return self.services.ready and (peers is None or peers.all_listening())

    async def _admin(
        self, request: Request, raw_path: str, raw_query: str, request_id: str
    ) -> StreamResponse:
        try:
            identity, _, _ = await authenticate(
                request, raw_path, raw_query, self.services.credentials, self._region, domain=self._domain
            )
            if identity is None or not identity.is_admin:
                raise S3Error("AccessDenied")
            return await admin.handle(self.services, request, raw_path, raw_query, identity)
        except S3Error as error:
            return error_response(error, request_id, raw_path, request.method == "HEAD")
        except MetadataUnavailableError:
            return error_response(_METADATA_UNAVAILABLE, request_id, raw_path, request.method == "HEAD")
