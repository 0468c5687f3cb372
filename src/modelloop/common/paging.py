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
