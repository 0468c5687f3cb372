"""Pages of long lists (``limit`` rows after ``offset``), read by the store rather than sliced
after reading everything: what the API's list routes and the console ask for."""

from __future__ import annotations

from modelloop.errors import InvalidInput


def check_page(limit: int | None, offset: int) -> None:
    """Refuse a page that cannot be read: ``limit`` below 1, ``offset`` below 0."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit must be 1 or more, not {limit}")
    if offset < 0:
        raise InvalidInput(f"offset must be 0 or more, not {offset}")


def paged(query, limit: int | None, offset: int):
    """A SQLAlchemy ``query`` cut to a page (no limit: every row after ``offset``), checked."""
    check_page(limit, offset)
    if limit is not None:
        query = query.limit(limit)
    return query.offset(offset) if offset else query
