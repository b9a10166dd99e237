"""What a handler gets: the request, its endpoint, who signed it, and the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pails.api.http import Request
from pails.api.router import Endpoint
from pails.iam.credentials import Identity

if TYPE_CHECKING:
    from pails.api.app import Services
    from pails.iam.sigv4 import AuthInfo


@dataclass(slots=True)
class RequestContext:
    request: Request
    endpoint: Endpoint
    request_id: str
    raw_query: str
    query: dict[str, str]
    services: Services
    identity: Identity | None = None
    auth: AuthInfo | None = None
    signing_key: bytes | None = None
    bytes_in: int = 0

    @property
    def bucket_name(self) -> str:
        assert self.endpoint.bucket is not None
        return self.endpoint.bucket

    @property
    def key(self) -> str:
        assert self.endpoint.key is not None
        return self.endpoint.key

    @property
    def resource(self) -> str:
        if self.endpoint.key is not None:
            return f"/{self.endpoint.bucket}/{self.endpoint.key}"
        if self.endpoint.bucket is not None:
            return f"/{self.endpoint.bucket}"
        return "/"
