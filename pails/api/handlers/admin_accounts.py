"""Accounts on the admin API (admin account only): POST /_pails/admin/accounts {"name": ...} creates
one and answers its ids and root key (the secret is shown this once); GET lists them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pails.api.http import Request, Response, json_response
from pails.api.xml import iso8601
from pails.errors import S3Error
from pails.iam.credentials import Identity
from pails.iam.iam_errors import IamError

if TYPE_CHECKING:
    from pails.api.app import Services

PATH = "/_pails/admin/accounts"
_MAX_BODY = 4096


def _error(err: IamError) -> Response:
    return json_response({"error": err.code, "message": err.message}, status=err.status)


async def handle(services: Services, request: Request, raw_path: str, identity: Identity) -> Response:
    if raw_path != PATH:
        raise S3Error("NotImplemented", f"No admin operation {request.method} {raw_path}.")
    try:
        if request.method == "GET":
            accounts = await services.iam.list_accounts(identity)
            return json_response(
                [
                    {
                        "account_id": a.account_id,
                        "canonical_id": a.canonical_id,
                        "name": a.name,
                        "created": iso8601(a.created_at),
                    }
                    for a in accounts
                ]
            )
        if request.method == "POST":
            raw = await request.content.read(_MAX_BODY + 1)
            try:
                body = json.loads(raw) if len(raw) <= _MAX_BODY else None
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise IamError("ValidationError", 'expected a JSON body {"name": "..."}')
            account, key = await services.iam.create_account(identity, body["name"])
            return json_response(
                {
                    "account_id": account.account_id,
                    "canonical_id": account.canonical_id,
                    "name": account.name,
                    "access_key_id": key.key.access_key_id,
                    "secret_access_key": key.secret,
                },
                status=201,
            )
    except IamError as err:
        return _error(err)
    raise S3Error("MethodNotAllowed")
