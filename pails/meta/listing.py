"""The S3 listing algorithm, shared by the metadata backends.

Both backends store keys as their UTF-8 bytes under an ordered index on (bucket_id, key), and
both answer one kind of query: "visible keys of this bucket after X (inclusive or not), below Y
(or unbounded), in byte order, at most N". `ListingPlan` decides which such query to run next and
consumes its rows one at a time; a backend only drives it:

    plan = ListingPlan(prefix, delimiter, start_after, max_keys)
    while (query := plan.next_query()) is not None:
        for row in run(query):               # lazily, so that a re-seek stops reading
            if not plan.offer(*row):
                break
        plan.end_batch()
    page = plan.page()

Seeks rather than scans: after a key that rolls up into a common prefix, the next query starts at
the byte successor of that prefix, so a prefix holding a million keys costs one query. Only keys
greater than start_after are considered; each rolls up into its common prefix, which is returned
even if start_after lies inside it (start_after "a/b" still yields "a/" for "a/c"; Garage does the
same), except a common prefix equal to start_after (the previous page ended with it).
next_marker is the last item returned when the page is truncated, else None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pails.meta.models import ListEntry, ListPage, VersionEntry, VersionPage

LIST_BATCH = 1000  # rows per listing query at most

T = TypeVar("T")


def byte_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with `prefix`.

    None when there is none (prefix empty or all 0xff): the range is unbounded above.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Visible keys k with lower < k (lower <= k if inclusive) and k < upper (if any), first `limit`."""

    lower: bytes
    inclusive: bool
    upper: bytes | None
    limit: int


class _SeekPlan:
    """What ListingPlan and VersionPlan share: the seek window, the rolled-up common prefixes, the
    page size and the per-query bookkeeping. Subclasses add their entries and their queries."""

    def __init__(self, prefix: str, delimiter: str, after: str, max_keys: int, batch: int) -> None:
        self._prefix = prefix.encode("utf-8")
        self._delimiter = delimiter.encode("utf-8")
        self._after = after.encode("utf-8")
        self._max_keys = max_keys
        self._batch = batch
        self.upper = byte_successor(self._prefix)
        # An empty start_after / key-marker means none (the empty key, if stored, is listed).
        if self._after and self._after >= self._prefix:
            self._lower, self._inclusive = self._after, False
        else:
            self._lower, self._inclusive = self._prefix, True
        self._prefixes: list[str] = []
        self._truncated = False
        self._done = max_keys <= 0
        self._seen = 0
        self._reseek = False
        self._entry_count = 0

    def _count(self) -> int:
        return self._entry_count + len(self._prefixes)

    def _limit(self) -> int:
        """Rows for the next query: one more than the page still needs (to know if it is truncated)."""
        self._seen, self._reseek = 0, False
        return min(self._max_keys - self._count() + 1, self._batch)

    def _page_full(self) -> bool:
        """True (and the page ends truncated) when no more items fit."""
        if self._count() == self._max_keys:
            self._truncated = self._done = True
            return True
        return False

    def _common_prefix(self, key: bytes) -> bytes | None:
        """The common prefix `key` rolls up into, or None when it is listed itself."""
        delim = self._delimiter
        cut = key.find(delim, len(self._prefix)) if delim else -1
        return key[: cut + len(delim)] if cut >= 0 else None

    def _roll_up(self, common: bytes) -> bool:
        """Record a common prefix (unless the previous page ended with it) and seek past it.

        Returns True when it was recorded."""
        recorded = False
        if common != self._after:
            if self._page_full():
                return False
            self._prefixes.append(common.decode("utf-8"))
            recorded = True
        successor = byte_successor(common)
        if successor is None:
            self._done = True
        else:
            self._lower, self._inclusive, self._reseek = successor, True, True
        return recorded

    @property
    def wants_few_rows(self) -> bool:
        """True while the query may stop early at a common prefix (a delimiter is in use)."""
        return bool(self._delimiter)


class ListingPlan(_SeekPlan):
    """One page of S3 ListObjects as a sequence of index seeks (see the module docstring)."""

    def __init__(
        self, prefix: str, delimiter: str, start_after: str, max_keys: int, *, batch: int = LIST_BATCH
    ) -> None:
        super().__init__(prefix, delimiter, start_after, max_keys, batch)
        self._entries: list[ListEntry] = []
        self._last: bytes | None = None
        self._query: ListQuery | None = None

    def next_query(self) -> ListQuery | None:
        """The next seek to run, or None when the page is complete."""
        if self._done:
            return None
        self._query = ListQuery(self._lower, self._inclusive, self.upper, self._limit())
        return self._query

    def offer(self, key: bytes, size: int, etag: str, last_modified: float, storage_class: str) -> bool:
        """Consume the next row of the current query; False: stop reading it (re-seek or done)."""
        self._seen += 1
        common = self._common_prefix(key)
        if common is not None:
            if self._roll_up(common):
                self._last = common
            return False
        if self._page_full():
            return False
        self._entries.append(ListEntry(key.decode("utf-8"), size, etag, last_modified, storage_class))
        self._entry_count += 1
        self._last, self._lower, self._inclusive = key, key, False
        return True

    def end_batch(self) -> None:
        """The current query's rows were read (all, or up to the row offer() refused)."""
        query = self._query
        if query is None:
            raise RuntimeError("end_batch() without next_query()")
        self._query = None
        if not self._reseek and self._seen < query.limit:
            self._done = True  # the index has nothing more in range

    def page(self) -> ListPage:
        next_marker = self._last.decode("utf-8") if self._truncated and self._last is not None else None
        return ListPage(self._entries, self._prefixes, self._truncated, next_marker)


class KeyIdListingPlan(Generic[T]):
    """The S3 listing rules for rows ordered by (key, id), e.g. multipart uploads by upload id.

    Sans-I/O like ListingPlan: the backend fetches rows with (key, id) > plan.after, in order,
    and offers them one by one:

        plan = KeyIdListingPlan(prefix, delimiter, key_marker, id_marker, limit)
        while not plan.done:
            rows = fetch(plan.after_key, plan.after_id, BATCH)
            for row in rows:
                if not plan.offer(key_bytes, row_id, lambda: build(row)):
                    break
            plan.end_batch(len(rows))
    """

    def __init__(self, prefix: str, delimiter: str, key_marker: str, id_marker: str, limit: int) -> None:
        self._prefix = prefix.encode("utf-8")
        self._delimiter = delimiter.encode("utf-8")
        self._limit = limit
        self.after_key = key_marker.encode("utf-8")
        # Without an id marker, every row of key_marker itself is skipped.
        self.after_id = id_marker if key_marker and id_marker else "\U0010ffff"
        if self._prefix > self.after_key:
            self.after_key, self.after_id = self._prefix, ""
        self.items: list[T] = []
        self.prefixes: list[str] = []
        self.truncated = False
        self.done = limit <= 0
        self.last_key: bytes | None = None
        self.last_id: str | None = None

    def _full(self) -> bool:
        return len(self.items) + len(self.prefixes) >= self._limit

    def offer(self, key: bytes, row_id: str, build: Callable[[], T]) -> bool:
        """Consume one row; False ends the current batch (a re-seek, truncation or the end)."""
        self.after_key, self.after_id = key, row_id
        if not key.startswith(self._prefix):
            self.done = True
            return False
        cut = key.find(self._delimiter, len(self._prefix)) if self._delimiter else -1
        if cut >= 0:
            common = key[: cut + len(self._delimiter)]
            if self.prefixes and self.prefixes[-1] == common.decode("utf-8"):
                return True
            if self._full():
                self.truncated = self.done = True
                return False
            self.prefixes.append(common.decode("utf-8"))
            self.last_key, self.last_id = common, None
            successor = byte_successor(common)
            if successor is None:
                self.done = True
            else:  # seek past the whole prefix: (key, id) > (successor, "")
                self.after_key, self.after_id = successor, ""
            return False
        if self._full():
            self.truncated = self.done = True
            return False
        self.items.append(build())
        self.last_key, self.last_id = key, row_id
        return True

    def end_batch(self, rows: int) -> None:
        if rows == 0:
            self.done = True

    @property
    def next_key_marker(self) -> str | None:
        return self.last_key.decode("utf-8") if self.last_key is not None else None


@dataclass(frozen=True, slots=True)
class VersionQuery:
    """Either the versions of one key older than a position (`key` set: last_modified < modified,
    or equal and version_id < version_id), or every version of the keys in (lower, upper).

    Rows are read by key, then newest first (last_modified, version_id descending): the order of
    the index (bucket_id, key, last_modified DESC, version_id DESC) both backends keep.
    """

    key: bytes | None
    modified: float
    version_id: str
    lower: bytes
    inclusive: bool
    upper: bytes | None
    limit: int


class VersionPlan(_SeekPlan):
    """One page of ListObjectVersions as index seeks; driven like ListingPlan.

    `resume` is the position of version-id-marker within key-marker ((last_modified, version
    id) of that version), which the backend looks up: the page then starts with the older
    versions of key-marker, then the keys after it. Without it, keys after key-marker.
    """

    def __init__(
        self,
        prefix: str,
        delimiter: str,
        key_marker: str,
        max_keys: int,
        *,
        resume: tuple[float, str] | None = None,
        batch: int = LIST_BATCH,
    ) -> None:
        super().__init__(prefix, delimiter, key_marker, max_keys, batch)
        self._within: tuple[bytes, float, str] | None = None
        if resume is not None and self._after and self._after.startswith(self._prefix):
            self._within = (self._after, resume[0], resume[1])
        self._entries: list[VersionEntry] = []
        self._last: tuple[bytes, str | None] | None = None
        self._query: VersionQuery | None = None

    def next_query(self) -> VersionQuery | None:
        if self._done:
            return None
        limit = self._limit()
        within = self._within
        if within is not None:
            query = VersionQuery(within[0], within[1], within[2], self._lower, False, self.upper, limit)
        else:
            query = VersionQuery(None, 0.0, "", self._lower, self._inclusive, self.upper, limit)
        self._query = query
        return query

    def offer(
        self,
        key: bytes,
        version_id: str,
        is_latest: bool,
        is_delete_marker: bool,
        size: int,
        etag: str,
        last_modified: float,
        storage_class: str,
    ) -> bool:
        """Consume the next row of the current query; False: stop reading it."""
        self._seen += 1
        common = self._common_prefix(key)
        if common is not None:
            if self._roll_up(common):
                self._last = (common, None)
            if not self._truncated:
                self._within = None
            return False
        if self._page_full():
            return False
        self._entries.append(
            VersionEntry(
                key.decode("utf-8"),
                version_id,
                bool(is_latest),
                bool(is_delete_marker),
                size,
                etag,
                last_modified,
                storage_class,
            )
        )
        self._entry_count += 1
        self._last = (key, version_id)
        self._within = (key, last_modified, version_id)
        self._lower, self._inclusive = key, False
        return True

    def end_batch(self) -> None:
        query = self._query
        if query is None:
            raise RuntimeError("end_batch() without next_query()")
        self._query = None
        if self._reseek or self._done:
            return
        if self._seen < query.limit:
            if query.key is not None:
                self._within = None  # that key has no older version: go on with the next keys
            else:
                self._done = True  # the index has nothing more in range
        # A full batch may have ended inside a key: the next query resumes within it.

    def page(self) -> VersionPage:
        if not self._truncated or self._last is None:
            return VersionPage(self._entries, self._prefixes, self._truncated, None, None)
        key, version_id = self._last
        return VersionPage(self._entries, self._prefixes, True, key.decode("utf-8"), version_id)
