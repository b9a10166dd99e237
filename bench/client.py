"""Streaming large-object client over one pooled aiohttp session, signed with :mod:`bench.sigv4`.

(Small requests go through :mod:`bench.rawhttp`, which is cheaper per request.)"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from yarl import URL

from bench.largeget import get_large
from bench.payload import LargePattern, StreamVerifier
from bench.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, Signer, encode_path


@dataclass(frozen=True)
class Target:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    bucket: str = "bench"
    timeout: float = 30.0


class S3Client:
    def __init__(self, target: Target, connections: int) -> None:
        self.target = target
        url = URL(target.endpoint)
        host = f"{url.host}:{url.port}"
        self.base = f"{url.scheme}://{host}"
        self.bucket_path = "/" + encode_path(target.bucket)
        self.signer = Signer(target.access_key, target.secret_key, target.region, host)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(1, connections), ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=target.timeout),
            auto_decompress=False,
            read_bufsize=1 << 20,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def close(self) -> None:
        await self.session.close()

    def _prep(
        self, method: str, key: str | None, query: str, payload_hash: str
    ) -> tuple[URL, dict[str, str]]:
        path = self.bucket_path if key is None else f"{self.bucket_path}/{encode_path(key)}"
        headers = self.signer.headers(method, path, query, payload_hash)
        url = URL(f"{self.base}{path}?{query}" if query else self.base + path, encoded=True)
        return url, headers

    async def put_stream(self, key: str, pattern: LargePattern) -> bool:
        url, headers = self._prep("PUT", key, "", UNSIGNED_PAYLOAD)
        headers["Content-Length"] = str(pattern.size)
        async with self.session.put(url, headers=headers, data=pattern.stream()) as resp:
            await resp.read()
            return resp.status == 200

    async def get_stream(self, key: str, pattern: LargePattern) -> bool:
        url, headers = self._prep("GET", key, "", EMPTY_SHA256)
        assert url.host is not None and url.port is not None
        # Not aiohttp: its copies of the body would make the client the bottleneck (largeget.py).
        return await get_large(
            url.host, url.port, url.raw_path_qs, headers, StreamVerifier(pattern), self.target.timeout * 10
        )
