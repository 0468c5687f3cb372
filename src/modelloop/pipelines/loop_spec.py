"""The loop spec (``loop.yaml``): what a retraining loop does, checked before anything runs.

pydantic checks the shape (unknown keys, types, choices); :func:`check_against` then checks the
spec against the workspace and the domain (the dataset and its columns exist, the algorithm and
metric are known, the gate is well formed). Every error names the field path and, for a file,
its line: ``loop.yaml:12 train.algorithm: unknown algorithm 'xgbost'; did you mean 'xgboost'?``

    name: loans                      # the loop; also the model's name unless register.model says
    data:
      dataset: loans                 # a dataset of the workspace …
      ingest: [incoming/*.csv]       # … with files, folders or globs ingested into it first
      event_time_column: applied_at
      window: 3                      # train on the newest 3 versions' rows (default: all)
    target: approved
    split: {method: time, fraction: 0.2}
    quality: {fail_on: [missing_column_check, data_type_check], ignore: [application_id]}
    train: {algorithm: hist_gradient_boosting, params: {max_iter: 100}}   # or tune: {...}
    evaluate:
      metric: roc_auc
      gate: [{min_absolute_change: 0.0}]   # candidate vs champion on the same holdout rows
    register: {approval: auto}       # or manual: a pipeline approval step waits
    deploy: {endpoint: loans, strategy: canary, options: {bake_seconds: 60}}
    monitors: [{name: drift, kind: data_drift, schedule: "0 * * * *"}]
    triggers: [{on: new_data}, {on: alarm, alarm: loans-drift}]   # see loop_triggers.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelloop.errors import InvalidInput
from modelloop.pipelines.loop_monitors import MonitorSection
from modelloop.pipelines.loop_triggers import TriggerSection

#: Constraint checks of :func:`modelloop.quality.check` a loop may stop on.
CHECK_TYPES = (
    "missing_column_check",
    "extra_column_check",
    "data_type_check",
    "completeness_check",
    "categorical_values_check",
    "range_check",
    "baseline_drift_check",
)
#: What stops a loop by default: the data's shape changed, or values went missing.
DEFAULT_FAIL_ON = [
    "missing_column_check",
    "extra_column_check",
    "data_type_check",
    "completeness_check",
]
#: Rollout strategies of ``ws.endpoints.deploy`` and the options it takes.
STRATEGIES = ("all-at-once", "blue-green", "canary", "linear")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # every number is finite


class DataSection(_Section):
    dataset: str = Field(description="the dataset the loop trains on")
    ingest: list[str] = Field(
        default_factory=list,
        description="files, folders or globs ingested into the dataset first (relative to the "
        "spec's folder)",
    )
    event_time_column: str | None = None
    window: int | None = Field(None, ge=1, description="train on the newest N versions' rows")
    features: str | None = Field(
        None, description="a feature set: the dataset holds labels (its entity key, time, target "
        "and request-time fields), and the loop trains on their point-in-time join with it")

    @model_validator(mode="before")
    @classmethod
    def _one_path(cls, value):
        if isinstance(value, dict) and isinstance(value.get("ingest"), str):
            value = {**value, "ingest": [value["ingest"]]}
        return value


class SplitSection(_Section):
    method: Literal["auto", "random", "stratified", "time"] = "auto"
    fraction: float = Field(0.2, gt=0, lt=1)
    time_column: str | None = None
    seed: int = 0


class QualitySection(_Section):
    enabled: bool = True
    fail_on: list[Literal[CHECK_TYPES]] = Field(default_factory=lambda: list(DEFAULT_FAIL_ON))
    ignore: list[str] = Field(default_factory=list, description="columns not checked (ids…)")
    config: dict[str, Any] = Field(
        default_factory=dict, description="modelloop.quality.CheckConfig fields"
    )


class TrainSection(_Section):
    algorithm: str = "hist_gradient_boosting"
    params: dict[str, Any] = Field(default_factory=dict)
    task: Literal["binary", "multiclass", "regression"] | None = None
    seed: int = 0
    time_budget: float = Field(60.0, gt=0)
    report: bool = True  # record the job's report data (drawn when first asked for)


class TuneSection(_Section):
    algorithm: str = "hist_gradient_boosting"
    space: dict[str, Any] | str | None = None
    metric: str | None = None
    task: Literal["binary", "multiclass", "regression"] | None = None
    n_trials: int | None = Field(None, ge=1)  # default: 20, or none under a time_budget
    cv: int = Field(3, ge=2)
    time_budget: float | None = Field(None, gt=0)
    seed: int = 0
    report: bool = True


class GateCondition(_Section):
    metric: str | None = None  # default: evaluate.metric
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    direction: Literal["greater", "lower"] | None = None


class BiasCondition(_Section):
    metric: str  # a post-training bias metric: DI, DPPL, AD, …
    within: tuple[float, float] | None = None  # the candidate's value must lie in [low, high]
    max_worsening: float | None = Field(None, ge=0)  # vs the champion, from fairness
    facet_value: str | None = None  # one group of a one-vs-rest facet (default: every group)


class BiasGate(_Section):
    facet: str  # sex=female, age>40, or a column (one vs rest), as modelloop bias takes it
    label: str  # approved=1, score>0.5, or a binary column
    group: str | None = None  # the column CDDPL conditions on
    conditions: list[BiasCondition] = Field(min_length=1)


class EvaluateSection(_Section):
    metric: str | None = None  # default: roc_auc (binary), log_loss (multiclass), rmse
    gate: list[GateCondition] = Field(
        default_factory=lambda: [GateCondition(min_absolute_change=0.0)]
    )
    bias: BiasGate | None = None  # bias conditions on the candidate's holdout predictions


class RegisterSection(_Section):
    model: str | None = None  # default: the loop's name
    approval: Literal["auto", "manual"] = "auto"
    alias: str = "champion"


class DeployOptions(_Section):
    bake_seconds: float | None = Field(None, ge=0)
    canary_percent: float | None = Field(None, gt=0, le=100)
    step_percent: float | None = Field(None, gt=0, le=100)
    max_error_rate: float | None = Field(None, ge=0, le=1)
    max_p99_ms: float | None = Field(None, gt=0)
    min_requests: int | None = Field(None, ge=0)
    # a bake with fewer than min_requests: wait (up to max_wait s, then roll back), fail, proceed
    on_low_traffic: Literal["wait", "fail", "proceed"] | None = None
    max_wait: float | None = Field(None, ge=0, le=7 * 24 * 3600)
    wait: bool | None = None
    timeout: float | None = Field(None, gt=0)


class DeploySection(_Section):
    endpoint: str
    strategy: Literal[STRATEGIES] = "all-at-once"
    options: DeployOptions = Field(default_factory=DeployOptions)
    capture: dict[str, Any] | None = None  # the endpoint's (enabled, sampling, mode); loop apply
    # online: the endpoint's primary learns from events ("online": {model, guard, metric, ...};
    # features from the champion's training data), the champion its frozen shadow
    mode: Literal["batch", "online"] = "batch"
    online: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _online_model(self):
        if self.mode == "online" and not (self.online or {}).get("model"):
            raise ValueError("mode online needs online.model (e.g. 'preprocessing.StandardScaler"
                             "|linear_model.LogisticRegression')")
        return self


class LoopSpec(_Section):
    """A whole loop. ``train`` and ``tune`` are exclusive; without either, ``train`` defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    data: DataSection
    target: str
    split: SplitSection = Field(default_factory=SplitSection)
    quality: QualitySection = Field(default_factory=QualitySection)
    train: TrainSection | None = None
    tune: TuneSection | None = None
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    registration: RegisterSection = Field(default_factory=RegisterSection, alias="register")
    deploy: DeploySection | None = None
    monitors: list[MonitorSection] = Field(default_factory=list)
    triggers: list[TriggerSection] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _split_shorthand(cls, value):
        if isinstance(value, dict) and isinstance(value.get("split"), str):
            value = {**value, "split": {"method": value["split"]}}
        return value

    @model_validator(mode="after")
    def _one_trainer(self):
        if self.train is not None and self.tune is not None:
            raise ValueError("give either train or tune, not both")
        if self.train is None and self.tune is None:
            self.train = TrainSection()
        return self

    @property
    def model_name(self) -> str:
        return self.registration.model or self.name


# -- reading, with line numbers ---------------------------------------------------------------------
class SpecSource:
    """Where a spec came from (a file and its YAML nodes), to point errors at lines."""

    def __init__(self, label: str, node=None, base_dir: Path | None = None):
        self.label = label
        self.node = node
        self.base_dir = base_dir or Path.cwd()

    def line(self, path: tuple) -> int | None:
        """The 1-based line of the deepest node of ``path`` found in the YAML."""
        from yaml.nodes import MappingNode, SequenceNode

        node, line = self.node, None
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, MappingNode):
                for key, value in node.value:
                    if key.value == str(part):
                        line, node = key.start_mark.line + 1, value
                        break
                else:
                    return line
            elif isinstance(node, SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return line
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def error(self, path: tuple, message: str, hint: str | None = None) -> InvalidInput:
        where = ".".join(str(p) for p in path) or "(top level)"
        line = self.line(path)
        prefix = f"{self.label}:{line}" if line else self.label
        return InvalidInput(f"{prefix} {where}: {message}", hint=hint)


def read(spec: str | os.PathLike | dict) -> tuple[dict, SpecSource]:
    """(the raw mapping, its source) from a path to a YAML file or a dict."""
    import yaml

    if isinstance(spec, dict):
        return dict(spec), SpecSource("loop spec")
    path = Path(spec)
    try:
        found = path.is_file()
    except OSError as exc:  # a name too long for the file system, say
        raise InvalidInput(f"cannot read loop spec {str(path)[:80]!r}: {exc.strerror}") from None
    if not found:
        raise InvalidInput(
            f"no loop spec at {path}", hint="write a loop.yaml (see 'modelloop loop --help')"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text (byte {exc.start})",
                           hint="save it as UTF-8") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path.name}:{mark.line + 1}" if mark else path.name
        raise InvalidInput(
            f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
            hint="check the indentation and quoting around that line",
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name}: a loop spec is a mapping (name:, data:, target: …)")
    return data, SpecSource(path.name, node, path.resolve().parent)


def parse(raw: dict, source: SpecSource) -> LoopSpec:
    """The validated :class:`LoopSpec`; every error names its field and line (all of them at once:
    the first is the error's message, the others its ``details``)."""
    try:
        return LoopSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [_shape_error(err, source) for err in exc.errors()]
    raise_all(problems)
    raise AssertionError("a ValidationError without errors")  # pragma: no cover


def _shape_error(err: dict, source: SpecSource) -> InvalidInput:
    path = tuple(p for p in err["loc"] if p not in ("function-after[_needs()]",))
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _fields_at(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        return source.error(
            path,
            "unknown key" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint=f"the keys here are: {', '.join(known)}" if known else None,
        )
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        message = "is required"
    elif "input" in err and kind not in ("value_error",):
        message += f" (got {err['input']!r})"
    return source.error(path, message)


def raise_all(problems: list[InvalidInput]) -> None:
    """Raise the first problem with the others as its ``details`` (nothing when there are none),
    so a user fixes a spec in one pass, not one error per run."""
    unique = list({str(p): p for p in problems}.values())
    if unique:
        first = unique[0]
        first.details = [str(p) for p in unique[1:]]
        raise first


def _fields_at(path: tuple) -> list[str]:
    """The keys allowed at ``path`` of the spec (for 'did you mean')."""
    model: Any = LoopSpec
    for part in path:
        if isinstance(part, int):
            continue
        field = _keys(model).get(str(part))
        model = _model_of(field.annotation) if field else None
        if model is None:
            return []
    return list(_keys(model))


def _keys(model: type[BaseModel]) -> dict:
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def _model_of(annotation) -> type[BaseModel] | None:
    """The section class inside ``X``, ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


# -- checks against the workspace and the domain ---------------------------------------------------
def check_against(spec: LoopSpec, source: SpecSource, datasets) -> dict:
    """Check names the workspace must know; returns facts found on the way (dataset schema)."""
    from modelloop.training.algorithms import is_custom_trainer, resolve_algorithm
    from modelloop.training.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS
    from modelloop.training.gate import check_conditions

    facts: dict = {"columns": None}
    problems: list[InvalidInput] = []
    known = {d["name"] for d in datasets.store.list_datasets()}
    # a watch trigger into the loop's dataset brings its data, as data.ingest does
    watched = any(t.on == "watch" and (t.dataset or spec.data.dataset) == spec.data.dataset
                  for t in spec.triggers)
    if spec.data.dataset not in known and not spec.data.ingest and not watched:
        close = difflib.get_close_matches(spec.data.dataset, sorted(known), n=1)
        problems.append(source.error(
            ("data", "dataset"),
            f"unknown dataset {spec.data.dataset!r}" + (f"; did you mean {close[0]!r}?"
                                                        if close else ""),
            hint=f"known datasets: {', '.join(sorted(known))}" if known else
            "ingest it first, or list files under data.ingest",
        ))
    for i, pattern in enumerate(spec.data.ingest):
        import glob

        path = Path(pattern) if Path(pattern).is_absolute() else source.base_dir / pattern
        if not (path.exists() or glob.glob(str(path))):
            problems.append(source.error(("data", "ingest", i), f"no file, folder or glob match "
                                         f"for {pattern!r} (looked in {source.base_dir})"))
    if spec.data.dataset in known:
        columns = datasets.get(spec.data.dataset).schema.names
        facts["columns"] = columns
        for path, column in [(("target",), spec.target),
                             (("split", "time_column"), spec.split.time_column),
                             (("data", "event_time_column"), spec.data.event_time_column)]:
            if column is not None and column not in columns:
                close = difflib.get_close_matches(column, columns, n=1)
                problems.append(source.error(
                    path, f"dataset {spec.data.dataset!r} has no column {column!r}"
                    + (f"; did you mean {close[0]!r}?" if close else ""),
                    hint=f"its columns: {', '.join(columns)}"))
    section = "train" if spec.train is not None else "tune"
    algorithm = (spec.train or spec.tune).algorithm
    if not (algorithm == "auto" and section == "tune") and not is_custom_trainer(algorithm):
        try:
            resolve_algorithm(algorithm)
        except InvalidInput as exc:
            problems.append(source.error((section, "algorithm"), exc.message, hint=exc.hint))
    metrics = set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    named = [(("evaluate", "metric"), spec.evaluate.metric)]
    named += [(("evaluate", "gate", i, "metric"), c.metric) for i, c in
              enumerate(spec.evaluate.gate)]
    if spec.tune is not None:
        named.append((("tune", "metric"), spec.tune.metric))
    for path, metric in named:
        if metric is not None and metric not in metrics:
            close = difflib.get_close_matches(metric, sorted(metrics), n=1)
            problems.append(source.error(path, f"unknown metric {metric!r}" + (
                f"; did you mean {close[0]!r}?" if close else ""),
                hint=f"metrics: {', '.join(sorted(metrics))}"))
    for i, cond in enumerate(spec.evaluate.gate):
        try:
            check_conditions([gate_condition(cond, "roc_auc")])
        except InvalidInput as exc:
            problems.append(source.error(("evaluate", "gate", i), exc.message, hint=exc.hint))
    if spec.evaluate.bias is not None:
        from modelloop.training.bias_gate import check_bias_spec

        try:
            check_bias_spec(spec.evaluate.bias.model_dump())
        except InvalidInput as exc:  # BiasSpecError included
            problems.append(source.error(("evaluate", "bias"), exc.message, hint=exc.hint))
    if spec.quality.config:
        from modelloop.quality.checks import CheckConfig

        try:
            CheckConfig.from_dict(spec.quality.config)
        except InvalidInput as exc:
            problems.append(source.error(("quality", "config"), exc.message, hint=exc.hint))
    for i, m in enumerate(spec.monitors):
        if m.schedule:
            problems += _check_cron(m.schedule, source, ("monitors", i, "schedule"))
    from modelloop.pipelines.loop_monitors import check_monitors

    problems += check_monitors(spec, source)
    for i, t in enumerate(spec.triggers):
        if t.schedule:
            problems += _check_cron(t.schedule, source, ("triggers", i, "schedule"))
        if t.timezone:
            problems += _check_timezone(t.timezone, source, ("triggers", i, "timezone"))
    from modelloop.data.refs import check_name

    for path, name in [(("name",), spec.name), (("register", "model"), spec.registration.model)]:
        if name is None:
            continue
        try:
            check_name(name, "model")
        except InvalidInput as exc:
            problems.append(source.error(path, exc.message, hint=exc.hint))
    raise_all(problems)
    return facts


def gate_condition(cond: GateCondition, metric: str) -> dict:
    """A gate condition as :mod:`modelloop.training.gate` reads it."""
    out = {k: v for k, v in cond.model_dump().items() if v is not None}
    out.setdefault("metric", metric)
    return out


def _check_cron(expr: str, source: SpecSource, path: tuple) -> list[InvalidInput]:
    from croniter import croniter

    if croniter.is_valid(expr):
        return []
    return [source.error(path, f"{expr!r} is not a cron schedule",
                         hint="five fields: minute hour day month weekday, e.g. '0 6 * * *'")]


def _check_timezone(name: str, source: SpecSource, path: tuple) -> list[InvalidInput]:
    from modelloop.pipelines.loop_triggers import timezone_problem

    problem = timezone_problem(name)
    return [source.error(path, problem[0], hint=problem[1])] if problem else []
