"""The admin API under /_pails/admin/ (root only): maintenance triggers for operators and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pails.api.handlers import admin_accounts, cluster_admin
from pails.api.http import Request, StreamResponse, json_response
from pails.errors import S3Error
from pails.iam.credentials import Identity
from pails.service.peers import summed

if TYPE_CHECKING:
    from pails.api.app import Services

PREFIX = "/_pails/"


async def handle(
    services: Services, request: Request, raw_path: str, raw_query: str, identity: Identity
) -> StreamResponse:
    if raw_path.startswith(admin_accounts.PATH):
        return await admin_accounts.handle(services, request, raw_path, identity)
    if raw_path.startswith(cluster_admin.PREFIX):
        return await cluster_admin.handle(services, request, raw_path, raw_query)
    if raw_path == "/_pails/admin/gc" and request.method == "POST":
        report = await services.gc.run_once(sweep_orphans=True, immediate=True)
        if services.peers is not None:  # every worker frees its own chunks
            report = summed(report, await services.peers.gather("POST", "/gc"))
        return json_response(report)
    if raw_path == "/_pails/admin/stats" and request.method == "GET":
        stats = services.gc.store_stats()
        if services.peers is not None:
            stats = summed(stats, await services.peers.gather("GET", "/stats"))
        return json_response(stats)
    raise S3Error("NotImplemented", f"No admin operation {request.method} {raw_path}.")
