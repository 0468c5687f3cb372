"""Search expressions over job records: ``metrics.roc_auc > 0.8 and params.max_depth = 5``.

``ws.jobs.search`` and ``modelloop jobs search`` filter with the predicates parsed here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from modelloop.errors import InvalidInput

_COND = re.compile(
    r"^\s*(metrics|params|info|status|kind|name)(?:\.([\w.\-]+))?\s*(>=|<=|!=|==|=|>|<)\s*(.+?)\s*$"
)
_OPS = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def parse_search(expression: str) -> list[Callable[[dict], bool]]:
    """Parse ``field op value [and …]`` into predicates over a job record."""
    conditions = []
    for part in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        m = _COND.match(part)
        if not m:
            raise InvalidInput(
                f"cannot read the search condition {part!r}",
                hint='write e.g. "metrics.roc_auc > 0.8 and params.max_depth = 5" '
                "(fields: metrics.X, params.X, info.X, status, kind, name)",
            )
        section, key, op, raw = m.groups()
        value = _literal(raw)

        def predicate(job, section=section, key=key, op=op, value=value):
            got = job.get(section) if key is None else (job.get(section) or {}).get(key)
            if got is None:
                return False
            try:
                return _OPS[op](got, value)
            except TypeError:
                return _OPS[op](str(got), str(value))

        conditions.append(predicate)
    return conditions


def _literal(raw: str):
    raw = raw.strip().strip("'\"")
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
