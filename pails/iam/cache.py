"""Bucket -> (owner, parsed policy, ACL, PublicAccessBlock) for authorization, cached.

Default: an in-process LRU whose entries live `ttl` seconds (a write through this process
invalidates at once; other processes see it within the TTL). With a Redis URL the processes
share the entries in Redis and invalidate each other through a pub/sub channel, so the local
entries can live longer (`shared_ttl`): a change through one process reaches every other at
once. If Redis fails, requests go on against the database (logged once per outage, counted in
pails_cache_fallbacks_total) with the short local TTL until Redis answers again.

Redis URL: redis://host:port/db[?prefix=NAME] (prefix: key and channel prefix, default "pails").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter

from pails.meta.access import BucketAccess
from pails.meta.models import Bucket

log = logging.getLogger("pails.cache")

Loader = Callable[[str], Awaitable[BucketAccess | None]]

_MISSING = "-"  # a Redis value meaning "no such bucket"
_REDIS_ENTRY_SECONDS = 10  # bounds how long a value written by a racing reader can be stale
_RETRY_SECONDS = 2.0  # after a Redis failure, the database alone for this long
_REDIS_TIMEOUT = 0.25

MISS: Any = object()
"""BucketCache.peek's answer when the entry is absent or expired."""


def encode_access(access: BucketAccess | None) -> str:
    if access is None:
        return _MISSING
    b = access.bucket
    return json.dumps(
        [b.id, b.name, b.owner_id, b.region, b.created_at, b.versioning, access.policy, access.acl,
         access.public_access_block],
        separators=(",", ":"),
    )  # fmt: skip


def decode_access(text: str) -> BucketAccess | None:
    if text == _MISSING:
        return None
    raw = json.loads(text)
    bucket = Bucket(
        id=raw[0], name=raw[1], owner_id=raw[2], region=raw[3], created_at=raw[4], versioning=raw[5]
    )
    return BucketAccess(bucket, raw[6], raw[7], raw[8])


def split_cache_url(url: str) -> tuple[str, str]:
    """(the URL for redis-py, the key prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unsupported cache URL {url!r}: use redis://host:port/db")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for name, value in query if name == "prefix"), "pails")
    rest = [(name, value) for name, value in query if name != "prefix"]
    return urlunsplit(parts._replace(query=urlencode(rest))), prefix


class BucketCache:
    """Values are whatever `build` makes of a BucketAccess (the authorizer's BucketAuth)."""

    def __init__(
        self,
        loader: Loader,
        build: Callable[[BucketAccess | None], Any],
        *,
        ttl: float = 1.0,
        max_entries: int = 10_000,
        redis_url: str | None = None,
        shared_ttl: float = 30.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._loader = loader
        self._build = build
        self._ttl = ttl
        self._shared_ttl = shared_ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self._epoch: dict[str, int] = {}
        self.fallbacks = Counter(
            "pails_cache_fallbacks",
            "Bucket cache lookups or invalidations that fell back to the database (Redis unavailable)",
            registry=registry,
        )
        self._redis_url: str | None = None
        self._prefix = "pails"
        if redis_url:
            self._redis_url, self._prefix = split_cache_url(redis_url)
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._logged_down = False
        self._listening = False
        self.on_invalidate: Callable[[str], Awaitable[None]] | None = None
        """Also tells these (the other workers of a --workers group, which share no Redis)."""

    @property
    def channel(self) -> str:
        return f"{self._prefix}:bucket-invalidate"

    def _key(self, name: str) -> str:
        return f"{self._prefix}:bucket:{name}"

    async def start(self) -> None:
        if self._redis_url is None:
            return
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(
            self._redis_url,
            socket_timeout=_REDIS_TIMEOUT,
            socket_connect_timeout=_REDIS_TIMEOUT,
            decode_responses=True,
        )
        self._listener = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    # ------------------------------------------------------------------ reads

    def _local_ttl(self) -> float:
        if self._redis is not None and self._listening and time.monotonic() >= self._down_until:
            return self._shared_ttl
        return self._ttl

    def peek(self, name: str) -> Any:
        """The live entry of `name`, or MISS (then `get` loads it)."""
        entry = self._entries.get(name)
        if entry is not None and entry[1] > time.monotonic():
            self._entries.move_to_end(name)
            return entry[0]
        return MISS

    async def get(self, name: str) -> Any:
        value = self.peek(name)
        if value is not MISS:
            return value
        epoch = self._epoch.get(name, 0)
        access = await self._fetch(name)
        value = self._build(access)
        if self._epoch.get(name, 0) == epoch:  # not invalidated while loading
            self._entries[name] = (value, time.monotonic() + self._local_ttl())
            self._entries.move_to_end(name)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    async def _fetch(self, name: str) -> BucketAccess | None:
        if self._redis is None or time.monotonic() < self._down_until:
            if self._redis is not None:
                self.fallbacks.inc()
            return await self._loader(name)
        try:
            cached = await self._redis.get(self._key(name))
        except Exception as exc:
            self.fallbacks.inc()
            self._redis_failed(exc)
            return await self._loader(name)
        if cached is not None:
            self._redis_ok()
            return decode_access(cached)
        access = await self._loader(name)
        try:
            await self._redis.set(self._key(name), encode_access(access), ex=_REDIS_ENTRY_SECONDS)
            self._redis_ok()
        except Exception as exc:
            self._redis_failed(exc)
        return access

    # ------------------------------------------------------------------ invalidation

    def forget(self, name: str) -> None:
        """Drop the local entry only (another worker of this process group made the change)."""
        self._drop(name)

    def _drop(self, name: str) -> None:
        self._entries.pop(name, None)
        self._epoch[name] = self._epoch.get(name, 0) + 1
        if len(self._epoch) > 4 * self._max:
            self._epoch.clear()  # loads in flight may then cache a value for one TTL: harmless

    async def invalidate(self, name: str) -> None:
        """The bucket's owner, policy, ACL or PublicAccessBlock changed (call after the write)."""
        self._drop(name)
        if self.on_invalidate is not None:
            await self.on_invalidate(name)
        if self._redis is None:
            return
        try:
            await self._redis.delete(self._key(name))
            await self._redis.publish(self.channel, name)
            self._redis_ok()
        except Exception as exc:
            self.fallbacks.inc()
            self._redis_failed(exc)

    async def _listen(self) -> None:
        """Apply other processes' invalidations; reconnect after failures."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._listening = True
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._drop(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening = False
                self._redis_failed(exc)
                self._entries.clear()  # invalidations may have been missed
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _redis_failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + _RETRY_SECONDS
        if not self._logged_down:
            self._logged_down = True
            log.warning("Redis cache unavailable (%s): using the metadata database until it answers", exc)
        # Entries that rely on invalidations may miss some: keep them only for the short TTL.
        limit = time.monotonic() + self._ttl
        for key, (value, expires) in list(self._entries.items()):
            if expires > limit:
                self._entries[key] = (value, limit)

    def _redis_ok(self) -> None:
        if self._logged_down:
            self._logged_down = False
            log.warning("Redis cache available again")
