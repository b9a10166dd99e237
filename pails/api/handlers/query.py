"""The IAM and STS query APIs on the S3 endpoint, chosen by the SigV4 credential scope's service."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import TYPE_CHECKING

from pails.api import query_protocol as qp
from pails.api.auth import authenticate
from pails.api.handlers import iam, sts
from pails.api.http import Request, Response
from pails.errors import S3Error
from pails.iam.iam_errors import IamError
from pails.iam.identities import Caller
from pails.iam.sessions import TokenExpired, TokenInvalid, decode

if TYPE_CHECKING:
    from pails.api.app import Services

log = logging.getLogger("pails.api")

SERVICES = ("iam", "sts")
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/(iam|sts)/aws4_request")
_QUERY_SCOPE = re.compile(
    r"X-Amz-Credential=[^&/]+(?:/|%2F)\d{8}(?:/|%2F)[^&/%]+(?:/|%2F)(iam|sts)(?:/|%2F)", re.I
)

# S3 authentication errors -> what the query APIs answer.
_AUTH_ERRORS = {
    "InvalidAccessKeyId": ("InvalidClientTokenId", "The security token included in the request is invalid."),
    "InvalidToken": ("InvalidClientTokenId", "The security token included in the request is invalid."),
    "ExpiredToken": ("ExpiredToken", "The security token included in the request is expired"),
    "AuthorizationHeaderMalformed": ("IncompleteSignature", None),
    "AuthorizationQueryParametersError": ("IncompleteSignature", None),
}


def query_service(request: Request, raw_query: str) -> str | None:
    """'iam' or 'sts' when the request is signed for one of them, else None (S3)."""
    header = request.lower_headers.get("authorization")
    if header is not None:
        if "/s3/aws4_request" in header:  # the usual case, without a regex
            return None
        match = _SCOPE.search(header)
        return match.group(1) if match else None
    if "X-Amz-Credential" in raw_query:
        match = _QUERY_SCOPE.search(raw_query)
        return match.group(1).lower() if match else None
    return None


def _auth_error(error: S3Error) -> IamError:
    code, message = _AUTH_ERRORS.get(error.code, (error.code, None))
    status = 403 if code in ("InvalidClientTokenId", "ExpiredToken") else error.status
    return IamError(code, message or error.message, status)


async def _body(request: Request) -> bytes:
    if request.content_length is not None and request.content_length > qp.MAX_BODY_BYTES:
        raise IamError("InvalidInput", "The request body is too large.", 413)
    body = await request.content.read(qp.MAX_BODY_BYTES + 1)
    if len(body) > qp.MAX_BODY_BYTES:
        raise IamError("InvalidInput", "The request body is too large.", 413)
    return body


def _caller_keys(request: Request) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {
        "aws:CurrentTime": (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),),
        "aws:EpochTime": (str(int(time.time())),),
        "aws:SecureTransport": ("true" if request.secure else "false",),
    }
    if request.remote:
        keys["aws:SourceIp"] = (request.remote,)
    return keys


async def handle(
    services: Services, service: str, request: Request, raw_path: str, raw_query: str, request_id: str
) -> Response:
    started = time.perf_counter()
    namespace = qp.IAM_NS if service == "iam" else qp.STS_NS
    action = "Unknown"
    try:
        body = await _body(request)
        digest = hashlib.sha256(body).hexdigest()
        try:
            identity, info, _ = await authenticate(
                request,
                raw_path,
                raw_query,
                services.credentials,
                services.settings.region,
                service=service,
                payload_hash=digest,
            )
        except S3Error as exc:
            raise _auth_error(exc) from None
        assert identity is not None and info is not None
        expected = info.payload_sha256
        if expected is not None and digest != expected:
            raise IamError("SignatureDoesNotMatch", "The request body does not match its signed hash.", 403)
        params = qp.parse_params(body, raw_query)
        action = params.pop("Action", "")
        params.pop("Version", None)
        if not action:
            raise IamError("MissingAction", "Missing Action")
        caller = Caller(identity, _caller_keys(request))
        if service == "iam":
            iam_action = iam.ACTIONS.get(action)
            if iam_action is None:
                raise IamError("InvalidAction", f"Could not find operation {action} for version 2010-05-08")
            result = await iam_action(services.iam, caller, params)
        else:
            sts_action = sts.ACTIONS.get(action)
            if sts_action is None:
                raise IamError("InvalidAction", f"Could not find operation {action} for version 2011-06-15")
            source = _source_key(services, identity.access_key, info.security_token)
            result = await sts_action(services.sts, caller, source, params)
        status, payload = 200, qp.response(action, namespace, result, request_id)
    except IamError as err:
        status, payload = err.status, qp.error(err, namespace, request_id)
    except Exception:
        log.exception("internal error in %s %s (request %s)", service, action, request_id)
        failure = IamError("InternalFailure", "An internal error occurred.", 500)
        status, payload = failure.status, qp.error(failure, namespace, request_id)
    known = action in (iam.ACTIONS if service == "iam" else sts.ACTIONS)
    services.metrics.observe(
        f"{service}:{action if known else 'Unknown'}", status, time.perf_counter() - started
    )
    return Response(
        status=status,
        body=payload,
        headers={"Content-Type": "text/xml", "x-amz-request-id": request_id, "x-amzn-RequestId": request_id},
    )


def _source_key(services: Services, access_key: str, token: str | None) -> str:
    """The long-term key behind the caller's credentials (a session's own source key)."""
    if token is None:
        return access_key
    try:
        return decode(token, services.credentials.keys, now=time.time()).source_key
    except (TokenExpired, TokenInvalid):
        raise IamError(
            "InvalidClientTokenId", "The security token included in the request is invalid.", 403
        ) from None
