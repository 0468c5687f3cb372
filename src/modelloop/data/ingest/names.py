"""The names an ingest records its source files under, when its caller gives them: an API
server ingests copies of a client's files and records them by the client's paths."""

from __future__ import annotations

from modelloop.errors import InvalidInput

#: The longest name a source may be recorded under (a path, as long as file systems allow).
MAX_SOURCE_NAME = 4096


def check_source_names(names) -> tuple[str, ...]:
    """``ingest``'s ``source_names``: plain text, one line each, of a bounded length (they come
    from an API client; they label records, they are never opened)."""
    if names is None:
        return ()
    if isinstance(names, str) or not isinstance(names, list | tuple):
        raise _source_names_error("a list of names, one per file")
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise _source_names_error(f"{n!r} is not a name")
        if len(n) > MAX_SOURCE_NAME:
            raise _source_names_error(f"a name of {len(n)} characters (at most {MAX_SOURCE_NAME})")
        if any(ord(c) < 32 or ord(c) == 127 for c in n):
            raise _source_names_error(f"{n[:80]!r} holds a control character")
    return tuple(names)


def _source_names_error(what: str) -> InvalidInput:
    exc = InvalidInput(f"source_names: {what}",
                       hint="name each file ingested by the path it was read from")  # fmt: skip
    exc.field = "source_names"
    return exc
