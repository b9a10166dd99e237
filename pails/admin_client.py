"""A small client of the gateway's admin API (`pails admin node ...`, `pails admin cluster ...`),
signed with botocore's SigV4 signer as any S3 request."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from defusedxml import ElementTree


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class AdminClient:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        timeout: float = 600.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credentials = Credentials(access_key, secret_key)
        self.region = region
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, query: str = "") -> Any:
        url = f"{self.endpoint}/_pails/admin/{quote(path, safe='/')}" + (f"?{query}" if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        S3SigV4Auth(self._credentials, "s3", self.region).add_auth(request)
        prepared = urllib.request.Request(
            url,
            data=data if method in ("POST", "PUT") else None,
            method=method,
            headers=dict(request.headers.items()),
        )
        try:
            with urllib.request.urlopen(prepared, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            code, message = "Error", raw.decode(errors="replace")
            try:
                root = ElementTree.fromstring(raw)
                code = root.findtext("Code") or code
                message = root.findtext("Message") or message
            except Exception:
                pass
            raise AdminError(exc.code, code, message) from None
