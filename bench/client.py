"""Thin S3 client over one pooled aiohttp session, signing with :mod:`bench.sigv4`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import unescape

import aiohttp
from yarl import URL

from bench.payload import LargePattern, StreamVerifier
from bench.sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, Signer, encode_path, encode_query

_KEY_RE = re.compile(r"<Key>(.*?)</Key>", re.S)
_TOKEN_RE = re.compile(r"<NextContinuationToken>(.*?)</NextContinuationToken>", re.S)
_TRUNC_RE = re.compile(r"<IsTruncated>\s*true\s*</IsTruncated>", re.I)
SIGN_LIMIT = 64 * 1024  # bodies up to this size are signed with their real SHA-256


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

    async def create_bucket(self) -> int:
        url, headers = self._prep("PUT", None, "", EMPTY_SHA256)
        async with self.session.put(url, headers=headers, data=b"") as resp:
            await resp.read()
            return resp.status

    async def put(self, key: str, body: bytes) -> bool:
        digest = hashlib.sha256(body).hexdigest() if len(body) <= SIGN_LIMIT else UNSIGNED_PAYLOAD
        url, headers = self._prep("PUT", key, "", digest)
        async with self.session.put(url, headers=headers, data=body) as resp:
            await resp.read()
            return resp.status == 200

    async def get(self, key: str) -> bytes | None:
        url, headers = self._prep("GET", key, "", EMPTY_SHA256)
        async with self.session.get(url, headers=headers) as resp:
            body = await resp.read()
            return body if resp.status == 200 else None

    async def head(self, key: str) -> tuple[int, int]:
        url, headers = self._prep("HEAD", key, "", EMPTY_SHA256)
        async with self.session.head(url, headers=headers) as resp:
            await resp.read()
            return resp.status, int(resp.headers.get("Content-Length", "-1"))

    async def delete(self, key: str) -> int:
        url, headers = self._prep("DELETE", key, "", EMPTY_SHA256)
        async with self.session.delete(url, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def put_stream(self, key: str, pattern: LargePattern) -> bool:
        url, headers = self._prep("PUT", key, "", UNSIGNED_PAYLOAD)
        headers["Content-Length"] = str(pattern.size)
        async with self.session.put(url, headers=headers, data=pattern.stream()) as resp:
            await resp.read()
            return resp.status == 200

    async def get_stream(self, key: str, pattern: LargePattern) -> bool:
        url, headers = self._prep("GET", key, "", EMPTY_SHA256)
        verifier = StreamVerifier(pattern)
        async with self.session.get(url, headers=headers) as resp:
            if resp.status != 200:
                await resp.read()
                return False
            async for data in resp.content.iter_any():
                verifier.feed(data)
        return verifier.finish()

    async def list_page(
        self, prefix: str, token: str | None, max_keys: int = 1000
    ) -> tuple[list[str], str | None]:
        """One ListObjectsV2 page: (keys, next continuation token or None). Raises on HTTP error."""
        params = {"list-type": "2", "max-keys": str(max_keys), "prefix": prefix}
        if token is not None:
            params["continuation-token"] = token
        url, headers = self._prep("GET", None, encode_query(params), EMPTY_SHA256)
        async with self.session.get(url, headers=headers) as resp:
            text = (await resp.read()).decode()
            if resp.status != 200:
                raise RuntimeError(f"LIST HTTP {resp.status}")
        keys = [unescape(k) for k in _KEY_RE.findall(text)]
        nxt = _TOKEN_RE.search(text)
        if _TRUNC_RE.search(text):
            if nxt is None:
                raise RuntimeError("truncated listing without continuation token")
            return keys, unescape(nxt.group(1))
        return keys, None
