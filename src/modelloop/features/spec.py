"""Feature set definitions: what ``features.yaml`` (or the same dict from Python) declares, checked.

A feature set names a source dataset, its entity key and event-time column, and features: each an
aggregate (count, sum, mean, min, max, count_distinct, last) of a column or a row expression over
a window (sliding, tumbling or hopping, e.g. ``1h``, ``24h``, ``30d``). Every problem found is
reported at once (``InvalidInput.details``), each naming the feature and the field.

Window semantics (the same offline and online, and in the brute-force reference of the tests), for
a row at time ``t``, over the source rows of its entity with event time ``e``:

- ``sliding`` ``w``: ``t - w <= e <= t``;
- ``tumbling`` ``w``: ``floor(t / w) * w <= e <= t`` (the current bucket, aligned on the epoch);
- ``hopping`` ``w`` every ``hop``: ``b - w <= e < b`` with ``b = floor(t / hop) * hop`` (the last
  window that has closed);
- no window (``last`` only): every row with ``e <= t``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field

from modelloop.errors import InvalidInput

AGGREGATES = ("count", "sum", "mean", "min", "max", "count_distinct", "last")
#: Aggregates that need a numeric column (the others take any column).
NUMERIC_AGGREGATES = ("sum", "mean", "min", "max")
WINDOW_TYPES = ("sliding", "tumbling", "hopping")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_FIELDS = {"name", "source", "entities", "event_time", "features", "allowed_lateness",
           "freshness", "description"}  # fmt: skip
_FEATURE_FIELDS = {"name", "column", "expression", "aggregate", "window", "window_type", "hop"}


def parse_duration(text, what: str) -> int:
    """``"90s"``, ``"10m"``, ``"1h"``, ``"30d"``, ``"2w"`` as nanoseconds (> 0), read by the one
    duration reader every option uses (``common/durations.py``)."""
    from datetime import timedelta

    from modelloop.common.durations import parse_duration as read

    ns = read(text, what=what) // timedelta(microseconds=1) * 1000 if isinstance(text, str) else 0
    if ns <= 0:
        raise InvalidInput(f"cannot read {what} {text!r}: it must be a positive duration",
                           hint="use a duration such as 30s, 10m, 1h, 24h, 30d or 1w")
    return ns


@dataclass(frozen=True)
class Feature:
    name: str
    aggregate: str
    column: str | None = None
    expression: str | None = None
    window: str | None = None
    window_type: str = "sliding"
    hop: str | None = None

    @property
    def window_ns(self) -> int | None:
        return parse_duration(self.window, self.name) if self.window else None

    @property
    def hop_ns(self) -> int | None:
        return parse_duration(self.hop, self.name) if self.hop else None

    @property
    def input(self) -> str | None:
        """The name of the per-row value this feature aggregates (None: the row itself)."""
        return self.column or (f"__expr_{self.name}" if self.expression else None)

    @property
    def span_ns(self) -> int | None:
        """How far back from a row's time its window can reach (None: unbounded)."""
        if self.window is None:
            return None
        return self.window_ns + (self.hop_ns or 0)


@dataclass(frozen=True)
class FeatureSet:
    name: str
    source: str
    entities: tuple[str, ...]
    event_time: str
    features: tuple[Feature, ...]
    allowed_lateness: str = "0s"
    freshness: str | None = None
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def entity(self) -> str:
        return self.entities[0]

    @property
    def lateness_ns(self) -> int:
        return 0 if self.allowed_lateness in ("0", "0s", 0) else parse_duration(
            self.allowed_lateness, "allowed_lateness")

    @property
    def span_ns(self) -> int | None:
        """The longest reach back of any feature (None when one is unbounded)."""
        spans = [f.span_ns for f in self.features]
        return None if any(s is None for s in spans) else max(spans)

    def columns(self) -> list[str]:
        """The source columns the definition reads."""
        out = [self.entity, self.event_time]
        for f in self.features:
            names = [f.column] if f.column else expression_names(f.expression) if f.expression else []
            out += [n for n in names if n not in out]
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["entities"] = list(self.entities)
        d["features"] = [{k: v for k, v in f.items() if v is not None and
                          not (k == "window_type" and v == "sliding")} for f in d["features"]]
        return {k: v for k, v in d.items() if v not in (None, "")}


# -- row expressions ------------------------------------------------------------------------------
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_CMPOPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_FUNCS = ("abs", "log", "log1p", "sqrt", "exp")


def _check_node(node, problems: list[str], where: str) -> None:
    if isinstance(node, ast.Expression):
        return _check_node(node.body, problems, where)
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
        _check_node(node.left, problems, where)
        return _check_node(node.right, problems, where)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _check_node(node.operand, problems, where)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], _CMPOPS):
        _check_node(node.left, problems, where)
        return _check_node(node.comparators[0], problems, where)
    if isinstance(node, ast.Name):
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and len(node.args) == 1 and not node.keywords):
        return _check_node(node.args[0], problems, where)
    problems.append(f"{where}: {ast.unparse(node)!r} is not allowed in an expression "
                    f"(columns, numbers, + - * / // % **, one comparison, {', '.join(_FUNCS)})")


def expression_names(expression: str) -> list[str]:
    tree = ast.parse(expression, mode="eval")
    funcs = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}  # fmt: skip
    return list(dict.fromkeys(n.id for n in ast.walk(tree)
                              if isinstance(n, ast.Name) and n.id not in funcs))


def evaluate_expression(expression: str, columns: dict):
    """The expression on NumPy arrays (the names are columns): a tiny walker over the checked
    tree instead of ``eval``/``pandas.eval``, so a definition from a file can run no code."""
    import numpy as np

    funcs = {"abs": np.abs, "log": np.log, "log1p": np.log1p, "sqrt": np.sqrt, "exp": np.exp}
    ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
           ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power, ast.Lt: np.less,
           ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
           ast.Eq: np.equal, ast.NotEq: np.not_equal}  # fmt: skip

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp):
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        if isinstance(node, ast.Compare):
            return ops[type(node.ops[0])](walk(node.left), walk(node.comparators[0])).astype(float)
        if isinstance(node, ast.Name):
            return np.asarray(columns[node.id], dtype=float)
        if isinstance(node, ast.Constant):
            return float(node.value)
        return funcs[node.func.id](walk(node.args[0]))

    with np.errstate(all="ignore"):
        return np.asarray(walk(ast.parse(expression, mode="eval")), dtype=float)


# -- parsing --------------------------------------------------------------------------------------
def _feature(raw, i: int, problems: list[str]) -> Feature | None:
    where = f"features[{i}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with name, aggregate, column or expression, window")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{where}: name {name!r} must be a word of letters, digits and _")
        return None
    where = f"feature {name!r}"
    for key in sorted(set(raw) - _FEATURE_FIELDS):
        problems.append(f"{where}: unknown field {key!r} (known: {', '.join(sorted(_FEATURE_FIELDS))})")
    agg = raw.get("aggregate", "last")
    if agg not in AGGREGATES:
        problems.append(f"{where}: unknown aggregate {agg!r} (known: {', '.join(AGGREGATES)})")
    column, expression = raw.get("column"), raw.get("expression")
    if column is not None and expression is not None:
        problems.append(f"{where}: give column or expression, not both")
    if column is not None and not isinstance(column, str):
        problems.append(f"{where}: column must be a column name")
    if expression is not None:
        try:
            _check_node(ast.parse(str(expression), mode="eval"), problems, where)
        except SyntaxError as exc:
            problems.append(f"{where}: expression {expression!r} does not parse ({exc.msg})")
    if column is None and expression is None and agg != "count":
        problems.append(f"{where}: aggregate {agg!r} needs a column or an expression")
    window, wtype, hop = raw.get("window"), raw.get("window_type", "sliding"), raw.get("hop")
    if wtype not in WINDOW_TYPES:
        problems.append(f"{where}: unknown window_type {wtype!r} (known: {', '.join(WINDOW_TYPES)})")
    for key, value in (("window", window), ("hop", hop)):
        if value is not None:
            try:
                parse_duration(value, f"{where}: {key}")
            except InvalidInput as exc:
                problems.append(str(exc))
    if window is None and agg != "last":
        problems.append(f"{where}: aggregate {agg!r} needs a window (e.g. window: 1h); only "
                        f"'last' can run over all history, whose state would grow without bound")
    if window is None and (wtype != "sliding" or hop is not None):
        problems.append(f"{where}: a {wtype} window needs its size (window: ...)")
    if wtype == "hopping" and hop is None:
        problems.append(f"{where}: a hopping window needs hop (e.g. window: 1h, hop: 10m)")
    if wtype != "hopping" and hop is not None:
        problems.append(f"{where}: hop is only for window_type: hopping")
    return Feature(name=name, aggregate=agg, column=column,
                   expression=str(expression) if expression is not None else None,
                   window=window if window is None else str(window), window_type=wtype,
                   hop=hop if hop is None else str(hop))  # fmt: skip


def parse_feature_set(raw) -> FeatureSet:
    """A checked :class:`FeatureSet` from the parsed YAML (or a dict written in Python)."""
    if not isinstance(raw, dict):
        raise InvalidInput("a feature set definition must be a mapping",
                           hint="name, source, entities, event_time and features")
    problems: list[str] = []
    for key in sorted(set(raw) - _FIELDS):
        problems.append(f"unknown field {key!r} (known: {', '.join(sorted(_FIELDS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"name {name!r} must be a word of letters, digits and _")
    source = raw.get("source")
    if not isinstance(source, str) or not source:
        problems.append("source: the dataset the rows come from is required")
    entities = raw.get("entities")
    entities = [entities] if isinstance(entities, str) else entities
    if not isinstance(entities, list) or len(entities) != 1 or not isinstance(entities[0], str):
        problems.append("entities: one entity key column is required (e.g. entities: [card_id])")
        entities = ["?"]
    event_time = raw.get("event_time")
    if not isinstance(event_time, str) or not event_time:
        problems.append("event_time: the event-time column is required")
    for key in ("allowed_lateness", "freshness"):
        if raw.get(key) not in (None, 0, "0", "0s"):
            try:
                parse_duration(raw[key], key)
            except InvalidInput as exc:
                problems.append(str(exc))
    feats = raw.get("features")
    if not isinstance(feats, list) or not feats:
        problems.append("features: at least one feature is required")
        feats = []
    parsed = [f for i, r in enumerate(feats) if (f := _feature(r, i, problems)) is not None]
    names = [f.name for f in parsed]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"feature {dup!r} is declared twice")
    for f in parsed:
        if f.name in (entities[0], event_time):
            problems.append(f"feature {f.name!r} has the name of the entity or event-time column")
    if problems:
        raise InvalidInput(f"feature set {name!r} is not valid ({len(problems)} problem"
                           f"{'s' if len(problems) > 1 else ''})", details=problems,
                           hint="fix each problem listed")  # fmt: skip
    return FeatureSet(name=name, source=source, entities=tuple(entities), event_time=event_time,
                      features=tuple(parsed),
                      allowed_lateness=str(raw.get("allowed_lateness", "0s")),
                      freshness=None if raw.get("freshness") is None else str(raw["freshness"]),
                      description=str(raw.get("description", "")))  # fmt: skip


def check_against_schema(fs: FeatureSet, schema) -> None:
    """Every column the definition reads exists in the source's Arrow ``schema`` with a type its
    aggregate can compute: an unknown column or a sum of strings is an error naming it."""
    import pyarrow as pa

    problems = []
    types = {f.name: f.type for f in schema}
    for col in (fs.entity, fs.event_time):
        if col not in types:
            problems.append(f"column {col!r} is not in dataset {fs.source!r} "
                            f"(columns: {', '.join(types)})")
    if fs.event_time in types and not (pa.types.is_timestamp(types[fs.event_time])
                                       or pa.types.is_date(types[fs.event_time])):
        problems.append(f"event_time {fs.event_time!r} is {types[fs.event_time]}, not a timestamp")
    for f in fs.features:
        used = [f.column] if f.column else expression_names(f.expression) if f.expression else []
        for col in used:
            if col not in types:
                problems.append(f"feature {f.name!r}: unknown column {col!r} in dataset "
                                f"{fs.source!r} (columns: {', '.join(types)})")
            elif (f.expression or f.aggregate in NUMERIC_AGGREGATES) and not (
                    pa.types.is_integer(types[col]) or pa.types.is_floating(types[col])
                    or pa.types.is_boolean(types[col])):
                problems.append(f"feature {f.name!r}: {f.aggregate} of column {col!r} "
                                f"({types[col]}) cannot be computed: it is not numeric")
    if problems:
        raise InvalidInput(f"feature set {fs.name!r} does not fit dataset {fs.source!r}",
                           details=problems, hint="fix each problem listed")
