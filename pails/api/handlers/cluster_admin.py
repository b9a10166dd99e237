"""The cluster part of the admin API (root only; `pails admin node ...`, `pails admin cluster ...`):

GET    /_pails/admin/cluster/status          nodes with health, usage and repair backlog
GET    /_pails/admin/cluster/nodes           the member nodes
POST   /_pails/admin/cluster/nodes           {"address": ..., "zone": ..., "weight": ...}
POST   /_pails/admin/cluster/nodes/REF/drain move its chunks away, then remove it
DELETE /_pails/admin/cluster/nodes/REF       remove (REF: node id or address)
POST   /_pails/admin/cluster/jobs?run=repair,antientropy,gc   run background jobs now
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from pails.api.http import Request, StreamResponse, json_response
from pails.errors import S3Error
from pails.meta.cluster import NodeExistsError, NoSuchNodeError

if TYPE_CHECKING:
    from pails.api.app import Services
    from pails.gateway import ClusterRuntime

PREFIX = "/_pails/admin/cluster/"
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")
_MAX_BODY = 64 * 1024
_JOBS = ("repair", "antientropy", "gc")


def _bad(message: str) -> S3Error:
    return S3Error("InvalidArgument", message)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.content.read(_MAX_BODY + 1)
    if len(body) > _MAX_BODY:
        raise _bad("The request body is too large.")
    declared = request.headers.get("x-amz-content-sha256", "")
    if declared and declared != "UNSIGNED-PAYLOAD" and declared != hashlib.sha256(body).hexdigest():
        raise S3Error("XAmzContentSHA256Mismatch")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise _bad("The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise _bad("The request body must be a JSON object.")
    return data


async def handle(services: Services, request: Request, raw_path: str, raw_query: str) -> StreamResponse:
    cluster: ClusterRuntime | None = services.cluster
    if cluster is None:
        raise S3Error("NotImplemented", "This server is not a cluster gateway (see pails gateway).")
    rest = raw_path[len(PREFIX) :]
    method = request.method
    if rest == "status" and method == "GET":
        return json_response(await cluster.status())
    if rest == "nodes" and method == "GET":
        return json_response({"nodes": [n.to_dict() for n in await cluster.view.store.list_nodes()]})
    if rest == "nodes" and method == "POST":
        data = await _json_body(request)
        address = data.get("address")
        zone = data.get("zone", "default")
        weight = data.get("weight", 1.0)
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise _bad("address must be HOST:PORT.")
        if not isinstance(zone, str) or not zone or len(zone) > 64:
            raise _bad("zone must be a non-empty string of at most 64 characters.")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1e6:
            raise _bad("weight must be a number > 0.")
        try:
            record, ring = await cluster.view.store.add_node(address, zone, float(weight))
        except NodeExistsError:
            raise S3Error(
                "InvalidRequest", f"A node with address {address} is already a member.", status=409
            ) from None
        await cluster.view.refresh()
        await cluster.view.probe_all()
        return json_response({"node": record.to_dict(), "ring_version": ring.version})
    if rest.startswith("nodes/"):
        parts = rest[len("nodes/") :].split("/")
        ref = unquote(parts[0])
        action = parts[1] if len(parts) == 2 else None
        if len(parts) > 2 or not ref:
            raise S3Error("NotImplemented", f"No admin operation {method} {raw_path}.")
        if method == "POST" and action == "drain":
            state = "draining"
        elif method == "DELETE" and action is None:
            state = "removed"
        else:
            raise S3Error("NotImplemented", f"No admin operation {method} {raw_path}.")
        try:
            record, ring = await cluster.view.store.set_node_state(ref, state)  # type: ignore[arg-type]
        except NoSuchNodeError:
            raise S3Error("InvalidArgument", f"No member node {ref}.", status=404) from None
        await cluster.view.refresh()
        return json_response({"node": record.to_dict(), "ring_version": ring.version})
    if rest == "jobs" and method == "POST":
        query = dict(parse_qsl(raw_query))
        jobs = [j for j in query.get("run", ",".join(_JOBS)).split(",") if j]
        unknown = [j for j in jobs if j not in _JOBS]
        if unknown:
            raise _bad(f"unknown jobs {unknown}; choose from {list(_JOBS)}")
        return json_response(await cluster.jobs.run_now(jobs))
    raise S3Error("NotImplemented", f"No admin operation {method} {raw_path}.")
