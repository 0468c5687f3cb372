"""An endpoint's spec: its variants, capture settings and serving options, checked at the door.

Stored as JSON in the metadata store; every server process builds its runtime from it. Variants
name a pinned model version (``churn@3``), a weight (relative share of primary traffic) and a role:
``primary`` variants answer requests, ``shadow`` variants get a mirrored copy of a sampled share
and only have their outputs captured.

A variant may instead be **online** (``{"online": {"model": "preprocessing.StandardScaler|
linear_model.LogisticRegression", "features": [{"name": "amount", "type": "number"}, ...],
"label": "class"}}``): its model is a River (or ``partial_fit``) estimator that a learner
process (``modelloop learn``) updates from labelled events, and servers answer with the
revision the learner published last (``modelloop.online``). Its ``model`` is the model spec
itself, never a registry reference; ``features`` (names and ``number`` / ``category``) is what
events and requests must carry, ``label`` what their labels are (``class`` or ``number``).

Every number a user gives serving (weights, sizes, percentages, timeouts, bake times, worker
counts…) is checked here by pydantic models, finite and in range, so the SDK, the CLI and any
future API refuse the same values with the same words: a ``nan`` weight or payload limit stored
once would break every request (or every ``GET /endpoints``) of the server that loads it.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelloop.errors import InvalidInput

VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ROLES = ("primary", "shadow")
CAPTURE_MODES = ("input", "output", "both")
LOW_TRAFFIC = ("wait", "fail", "proceed")
STRATEGIES = ("all-at-once", "blue-green", "canary", "linear")
FEATURE_TYPES = ("number", "category")
LABEL_TYPES = ("class", "number")
ONLINE_VARIANT = "online"  # the default name of an endpoint's online variant

DEFAULT_OPTIONS = {
    "timeout_seconds": 60.0,  # per request, as SageMaker's container contract
    "max_payload_mb": 6.0,  # SageMaker's runtime limit
    "max_batch_rows": 256,  # micro-batching: rows gathered into one predict call
    "max_request_rows": 100_000,  # rows one request may carry, checked before rows are built
    "max_wait_ms": 0.0,  # extra wait to gather a batch (0: only what queued during a predict)
    "auth": "feedback",  # which routes need an API token (AUTH_MODES)
}
#: Which of an endpoint's routes need an API token: ``token`` all (inference: viewer; feedback
#: and events: operator), ``feedback`` only feedback and events (operator), ``none`` none.
AUTH_MODES = ("token", "feedback", "none")
DEFAULT_CAPTURE = {"enabled": False, "sampling": 100.0, "mode": "both"}

Percent = Annotated[float, Field(ge=0, le=100)]
Seconds = Annotated[float, Field(ge=0, le=7 * 24 * 3600)]


class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OnlineFeature(_Checked):
    name: str = Field(min_length=1, max_length=256)
    type: Literal[FEATURE_TYPES] = "number"


class OnlineGuard(_Checked):
    """The guardrail against the endpoint's frozen champion (``online/guard.py``)."""

    window: int = Field(500, ge=1, le=1_000_000)  # events per window (metric points, checks)
    margin: float = Field(0.05, ge=0, le=1e9)  # how far below the champion it may fall
    breaches: int = Field(1, ge=1, le=1000)  # windows in a row that fire it
    keep: int = Field(8, ge=1, le=64)  # snapshots kept to revert to
    # events a fresh model may learn before the guard arms even if it has not yet come within
    # the margin on a window (it arms at the first window that does); 0: armed from the start
    warmup: int = Field(10_000, ge=0, le=1_000_000_000)
    drift: Literal["reset", "reseed"] | None = None  # what ADWIN on the error stream does


class OnlineSpec(_Checked):
    """What makes a variant online: the model spec the learner builds, the features events and
    requests carry, the label's type, the prequential metric (River's class name; default
    Accuracy or MAE), the guard, how often the learner publishes (serving sees an update within
    that plus its 100 ms poll) and, optionally, every how many events a checkpoint is
    registered as a version of model ``snapshot_model``."""

    model: str = Field(min_length=1, max_length=2000)
    features: list[OnlineFeature] = Field(min_length=1, max_length=1000)
    label: Literal[LABEL_TYPES] = "class"
    metric: str | None = Field(None, max_length=100)
    guard: OnlineGuard = OnlineGuard()
    publish_seconds: float = Field(0.2, ge=0, le=3600)
    # where the learner reads events: the intake (POST /events), or the event stream (embedded
    # or Redis Streams: events of kind online.event, which POST /events then appends)
    source: Literal["intake", "stream"] = "intake"
    snapshot_every: int | None = Field(None, ge=1, le=1_000_000_000)
    snapshot_model: str | None = Field(None, max_length=256)


class VariantSpec(_Checked):
    name: str | None = None
    model: str
    online: OnlineSpec | None = None
    weight: float = Field(100.0, ge=0, le=1_000_000)  # relative share; a sum must stay finite
    role: Literal[ROLES] = "primary"
    sample: Percent = 100.0  # shadows: share of primary traffic mirrored
    explain: bool = False  # answers POST /endpoints/NAME/explain (SHAP attributions)


class CaptureSpec(_Checked):
    enabled: bool = False
    sampling: Percent = 100.0
    mode: Literal[CAPTURE_MODES] = "both"


class EndpointOptions(_Checked):
    timeout_seconds: float = Field(60.0, gt=0, le=3600)
    max_payload_mb: float = Field(6.0, gt=0, le=1024)
    max_batch_rows: int = Field(256, ge=1, le=1_000_000)
    max_request_rows: int = Field(100_000, ge=1, le=100_000_000)
    max_wait_ms: float = Field(0.0, ge=0, le=10_000)
    explain_budget_ms: float = Field(1000.0, gt=0, le=600_000)  # reported with each explanation
    explain_max_rows: int = Field(100, ge=1, le=100_000)  # rows one explain request may carry
    explain_nsamples: int = Field(100, ge=1, le=100_000)  # Kernel SHAP: evaluations per row
    auth: Literal[AUTH_MODES] = "feedback"


class DeployOptions(_Checked):
    """The numbers of a rollout (``ws.endpoints.deploy``)."""

    strategy: Literal[STRATEGIES] = "all-at-once"
    bake_seconds: Seconds = 60.0
    canary_percent: float = Field(10.0, gt=0, lt=100)
    step_percent: float = Field(25.0, ge=1, lt=100)  # at most 100 steps
    max_error_rate: float | None = Field(0.05, ge=0, le=1)
    max_p99_ms: float | None = Field(None, gt=0, le=3_600_000)
    min_requests: int = Field(5, ge=0, le=1_000_000_000)
    on_low_traffic: Literal[LOW_TRAFFIC] = "wait"
    max_wait: Seconds = 600.0  # with "wait": how long a step may wait for min_requests
    timeout: float | None = Field(None, gt=0, le=30 * 24 * 3600)


class ServeOptions(_Checked):
    """The numbers and the address of ``modelloop serve``."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    insecure: bool = False
    min_workers: int = Field(1, ge=1, le=1024)
    max_workers: int = Field(1, ge=1, le=1024)
    target_inflight: float | None = Field(None, gt=0, le=1_000_000)
    scale_out_cooldown: Seconds | None = None
    scale_in_cooldown: Seconds | None = None
    metrics_seconds: float = Field(10.0, ge=0.1, le=24 * 3600)


def validated(model: type[BaseModel], values: dict, what: str) -> BaseModel:
    """``model(**values)``, or InvalidInput naming the first wrong field, its value and why."""
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or what
        value = f" {err['input']!r}" if err["type"] != "missing" else ""
        raise InvalidInput(f"{what} {field}{value}: {err['msg'][0].lower()}{err['msg'][1:]}",
                           hint=_hint(model, err)) from None


def _hint(model: type[BaseModel], err: dict) -> str | None:
    if err["type"] == "extra_forbidden":
        return f"known: {', '.join(model.model_fields)}"
    if err["type"] == "finite_number":
        return "give a finite number (not nan or inf)"
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serve(**values) -> ServeOptions:
    """Checked serve options; a non-loopback ``host`` needs ``insecure``: endpoints whose
    ``auth`` is not ``token`` answer predictions to anyone who reaches the port."""
    opts = validated(ServeOptions, values, "serve option")
    if opts.max_workers < opts.min_workers:
        raise InvalidInput(f"serve option max_workers {opts.max_workers}: must be at least "
                           f"min_workers ({opts.min_workers})")
    if not is_loopback(opts.host) and not opts.insecure:
        raise InvalidInput(
            f"refusing to serve on {opts.host}: endpoints answer predictions without a token "
            "unless created with --auth token, so any client that reaches the port could use them",
            hint="serve on 127.0.0.1 behind an authenticating proxy, or pass --insecure once "
                 "the endpoints need tokens (endpoint update NAME --auth token) or the network "
                 "is trusted")
    return opts


def variant_name_for(model_ref: str) -> str:
    """``churn@3`` -> ``churn-v3``: the default variant name of a model version."""
    name, _, version = model_ref.partition("@")
    return f"{name}-v{version}"[:63]


def is_online(v: dict) -> bool:
    """Whether a (checked) variant is online: learned from events, not a registered version."""
    return bool(v.get("online"))


def check_variant(v: dict) -> dict:
    if isinstance(v, dict) and isinstance(v.get("online"), dict) and "model" not in v:
        v = {**v, "model": v["online"].get("model", "")}
    if not isinstance(v, dict) or "model" not in v:
        raise InvalidInput("a variant needs at least a model", hint="e.g. {'model': 'churn@3'}")
    where = f"variant {v['name']!r}" if v.get("name") else f"variant of {v['model']!r}"
    out = validated(VariantSpec, {**v, "model": str(v["model"])}, where).model_dump()
    if out["online"] is not None:
        if out["explain"]:
            raise InvalidInput(f"{where}: an online variant does not explain",
                               hint="explanations need a fixed model and its training rows")
        out["model"] = out["online"]["model"]  # an online variant's model is its model spec
        names = [f["name"] for f in out["online"]["features"]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"{where}: feature {dupes[0]!r} is listed twice")
        out["name"] = str(out["name"] or ONLINE_VARIANT)
    out["name"] = str(out["name"] or variant_name_for(out["model"]))
    if not VARIANT_RE.match(out["name"]):
        raise InvalidInput(
            f"invalid variant name {out['name']!r}",
            hint="use up to 63 letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    keys = ("name", "model", "weight", "role", "sample") + (("explain",) if out["explain"] else ())
    keep = {k: out[k] for k in keys}
    if out["online"] is not None:
        keep["online"] = out["online"]
    return keep


def online_variant(spec: dict) -> dict | None:
    """The endpoint spec's online variant, if it has one."""
    return next((v for v in spec.get("variants") or [] if is_online(v)), None)


def online_variant_dict(model_spec: str, features: list | None, label: str,
                        also: object = None, **settings) -> dict:
    """The variant of an online endpoint (``features``: names or ``{"name", "type"}``); the
    model spec is built once here, so a name that does not resolve is an InvalidInput now
    rather than a learner failing later. ``also``: a model, variants or alias given too;
    ``settings``: the other fields of :class:`OnlineSpec` (metric, guard, ...)."""
    if also:
        raise InvalidInput("give an online model spec or a model (variants), not both",
                           hint="an online endpoint serves what its learner learns")
    from modelloop.online import build_model

    if not features:
        raise InvalidInput("an online endpoint needs its features",
                           hint="pass --features a,b:category,... or --schema DATASET@V "
                                "--target COLUMN (features=[...] in the SDK)")
    build_model(model_spec)
    feats = [{"name": f} if isinstance(f, str) else f for f in features]
    return {"online": {"model": model_spec, "features": feats, "label": label, **settings}}


def check_deploy(**values) -> DeployOptions:
    return validated(DeployOptions, values, "deploy option")


def check_spec(spec: dict) -> dict:
    """A complete, normalised spec; raises InvalidInput naming the wrong field."""
    spec = copy.deepcopy(spec)
    variants = [check_variant(v) for v in spec.get("variants") or []]
    names = [v["name"] for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"variant {dupes[0]!r} is listed twice",
                           hint="give each variant its own name (--variant NAME=MODEL)")
    if sum(is_online(v) for v in variants) > 1:
        raise InvalidInput("an endpoint has at most one online variant",
                           hint="its labelled events (POST /endpoints/NAME/events) teach one "
                                "model; make another endpoint for another online model")
    primaries = [v for v in variants if v["role"] == "primary"]
    if variants and not primaries:
        raise InvalidInput("an endpoint needs at least one primary variant",
                           hint="shadow variants only receive copies of primary traffic")
    if primaries and sum(v["weight"] for v in primaries) <= 0:
        raise InvalidInput("the primary variants' weights add up to 0",
                           hint="give at least one primary variant a positive weight")
    capture = validated(CaptureSpec, {**DEFAULT_CAPTURE, **(spec.get("capture") or {})},
                        "capture").model_dump()
    options = validated(EndpointOptions, {**DEFAULT_OPTIONS, **(spec.get("options") or {})},
                        "endpoint option").model_dump()
    out = {"variants": variants, "capture": capture, "options": options,
           "follow": spec.get("follow"), "deploy": spec.get("deploy") or {}}
    if spec.get("approval_overrides"):
        out["approval_overrides"] = spec["approval_overrides"]
    return out
