"""No console page fetches everything (issue 19: pages load fast on 10,000 jobs and 1,000 model
versions): the reads its modules send, found in their sources, are each a route of the API, a
list route is read a page at a time of a bounded size (which the API caps as well), and no list is
read to pick one item out of it (a page then misses the item once the list is long; the model page
listed every model to find its own aliases, and reads ``/models/{name}/aliases`` now). Static and
cheap: no browser, no server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelloop.remote.operations import OPERATIONS, PAGE_MAX

PAGES = Path(__file__).resolve().parents[2] / "src" / "modelloop" / "ui" / "static" / "js"
#: The largest page a console module asks for (a table, a chart's points); above it, a page is
#: "everything" in disguise.
UI_PAGE_MAX = 200
#: The api.js functions that read: ``get(path, query)``, ``page(path, query, limit, offset)``,
#: ``download(path, query, filename)``; a method call (``params.get(…)``) is not one of them.
READ = re.compile(r"(?<![\w.])(get|page|download)\(")
CLOSE = {"(": ")", "[": "]", "{": "}"}


def _arguments(text: str, start: int) -> list[str]:
    """The top-level arguments of the call whose ``(`` is just before ``start``."""
    args, depth, i, begin = [], 0, start, start
    while i < len(text):
        c = text[i]
        if c in "\"'`":
            i = text.index(c, i + 1)  # no escaped quotes in these sources
        elif c in CLOSE:
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append(text[begin:i].strip())
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[begin:i].strip())
            begin = i + 1
        i += 1
    raise AssertionError(f"unbalanced call at {start}")


def _route(arg: str) -> str | None:
    """``/models/{}/history`` from ``path("models", name, "history")``, a string or a template;
    None for a variable (api.js's own wrappers)."""
    if arg[:1] in "\"'":
        return arg[1:-1]
    if arg.startswith("`"):
        return re.sub(r"\$\{[^}]*\}", "{}", arg[1:-1])
    if arg.startswith("path(") and arg.endswith(")"):
        parts = _arguments(arg, len("path("))
        return "".join("/" + (p[1:-1] if p[:1] in "\"'" else "{}") for p in parts)
    return None


def _operation(route: str):
    """The GET row whose path ``route`` is (``{}`` a value): each segment equal, or a parameter
    of the row; the row with most equal segments (``/jobs/compare`` before ``/jobs/{job_id}``)."""
    want = route.strip("/").split("/")

    def fits(h: str, w: str) -> bool:
        return h == w or (h.startswith("{") and bool(w))

    rows = [(sum(h == w for h, w in zip(have, want, strict=True)), op) for op in OPERATIONS
            if op.http == "GET" and len(have := op.path.strip("/").split("/")) == len(want)
            and all(fits(h, w) for h, w in zip(have, want, strict=True))]  # fmt: skip
    return max(rows, key=lambda row: row[0])[1] if rows else None


def _reads():
    for file in sorted(PAGES.rglob("*.js")):
        if file.name == "api.js":
            continue
        text = file.read_text()
        for m in READ.finditer(text):
            args = _arguments(text, m.end())
            route = _route(args[0])
            if route is not None:
                line = text.count("\n", 0, m.start()) + 1
                yield f"{file.relative_to(PAGES)}:{line}", m.group(1), route, args[1:], text


READS = list(_reads())


def test_the_sources_are_read():
    assert len(READS) > 30
    kinds = {(kind, route) for _, kind, route, _, _ in READS}
    assert ("get", "/models/{}/aliases") in kinds and ("page", "/models") in kinds


@pytest.mark.parametrize(("where", "kind", "route", "args"),
                         [r[:4] for r in READS], ids=[r[0] for r in READS])  # fmt: skip
def test_each_read_is_a_route_and_a_list_is_read_a_bounded_page_at_a_time(where, kind, route, args):
    op = _operation(route)
    assert op is not None, f"{where}: {kind}({route}) is no GET route of the API"
    if kind == "page":  # the pager's limit and offset (its size: checked below)
        assert op.page, f"{where}: {route} is not a list; read it with get()"
    elif op.page:  # a list read with get(): one page, of a size it names
        query = args[0] if args else ""
        limit = re.search(r"\blimit:\s*(\d+)\b", query)
        assert limit, f"{where}: {route} is a list; name its page size (limit) or use page()"
        assert int(limit.group(1)) <= UI_PAGE_MAX, f"{where}: a page of {limit.group(1)}"


def test_every_page_size_is_bounded_and_no_list_is_searched_for_one_item():
    assert UI_PAGE_MAX <= PAGE_MAX  # what the API refuses above (tests/api: pages are capped)
    for file in sorted(PAGES.rglob("*.js")):
        text = file.read_text()
        for m in re.finditer(r"\blimit\s*[:=]\s*(\d+)", text):
            assert int(m.group(1)) <= UI_PAGE_MAX, f"{file.name}: {m.group(0)}"
        # (await get(list)).find(…): a page of the list may not hold the item
        assert not re.search(r"await\s+(get|page)\([^;]*\)\)\s*\.(find|filter)\(", text), file.name
