"""References to values that exist only when a pipeline runs: outputs, parameters, conditions.

Comparing a :class:`Ref` builds a :class:`Condition` (``model["score"] > 0.8``) that the runner
evaluates once the node has run; a Ref has no truth value while the pipeline is being defined.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from modelloop.errors import InvalidInput

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "truthy": lambda a, _b: bool(a),
}


class Ref:
    """The output of a node (or a key inside it, ``ref["score"]``), known once the node ran."""

    __hash__ = object.__hash__

    def __init__(self, node: str, path: tuple = ()):
        self.node = node
        self.path = tuple(path)

    def __getitem__(self, key) -> Ref:
        return Ref(self.node, (*self.path, key))

    def __repr__(self) -> str:
        return self.node + "".join(f"[{k!r}]" for k in self.path)

    def to_spec(self) -> dict:
        return {"ref": self.node, "path": list(self.path)}

    def _cmp(self, op: str, other) -> Condition:
        return Condition(self, op, other)

    def __eq__(self, other):  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other):  # type: ignore[override]
        return self._cmp("!=", other)

    def __lt__(self, other):
        return self._cmp("<", other)

    def __le__(self, other):
        return self._cmp("<=", other)

    def __gt__(self, other):
        return self._cmp(">", other)

    def __ge__(self, other):
        return self._cmp(">=", other)

    def __bool__(self):
        raise InvalidInput(
            f"{self!r} has no value while the pipeline is being defined",
            hint="branch with 'with when(ref > x):' instead of a Python 'if'",
        )


class Param(Ref):
    """A pipeline parameter: ``params[name]`` of the run, else its default."""

    def __init__(self, name: str, path: tuple = ()):
        super().__init__(f"params.{name}", path)
        self.name = name

    def __getitem__(self, key) -> Ref:
        p = Param(self.name, (*self.path, key))
        return p


@dataclass(frozen=True)
class Condition:
    """``left op right``, e.g. ``model["score"] > 0.8``; ``~cond`` negates it."""

    left: Ref
    op: str = "truthy"
    right: Any = None
    negate: bool = False

    def __invert__(self) -> Condition:
        return replace(self, negate=not self.negate)

    def __bool__(self):
        raise InvalidInput(
            f"the condition {self.describe()} has no value while the pipeline is being defined",
            hint="use it as 'with when(condition):'",
        )

    def refs(self) -> list[Ref]:
        return [r for r in (self.left, self.right) if isinstance(r, Ref)]

    def evaluate(self, resolve: Callable[[Ref], Any]) -> bool:
        right = resolve(self.right) if isinstance(self.right, Ref) else self.right
        try:
            result = bool(_OPS[self.op](resolve(self.left), right))
        except TypeError as exc:
            raise InvalidInput(f"cannot evaluate the condition {self.describe()}: {exc}") from None
        return result != self.negate

    def describe(self) -> str:
        text = repr(self.left) if self.op == "truthy" else f"{self.left!r} {self.op} {self.right!r}"
        return f"not ({text})" if self.negate else text


def as_condition(value) -> Condition:
    if isinstance(value, Condition):
        return value
    if isinstance(value, Ref):
        return Condition(value)
    raise InvalidInput(
        f"when() needs a step output or a comparison of one, not {type(value).__name__}",
        hint="e.g. when(evaluate_out['passed']) or when(evaluate_out['auc'] > 0.8)",
    )
