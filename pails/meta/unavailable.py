"""The metadata database is out of reach: what the store raises, and what callers may conclude."""

from __future__ import annotations


class MetadataUnavailableError(Exception):
    """The metadata database could not be reached, or the connection was lost (a restarted or
    crashed PostgreSQL, pg_terminate_backend), and retrying did not help. Answered as 503
    ServiceUnavailable, which clients retry.

    maybe_done: the operation reached the database before the connection was lost, so it may have
    committed. A write whose outcome is unknown must keep the chunks it wrote: a committed row may
    name them (if it did not commit, the orphan sweep frees them later).
    """

    def __init__(self, message: str, *, maybe_done: bool) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done


def outcome_unknown(exc: BaseException) -> bool:
    """True when exc leaves it open whether the metadata write committed."""
    return isinstance(exc, MetadataUnavailableError) and exc.maybe_done
