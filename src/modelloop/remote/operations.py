"""The operations of the control-plane API: one row per façade method a user calls over HTTP.

The server (``modelloop.api``) and the remote client (``modelloop.remote``) are both generated
from this table and from the signatures of the service methods it names, so every row is a route
and a client method, and nothing else is: "every façade operation" holds by construction, and a
test that walks the OpenAPI document reaches every route (MLflow's REST API is generated from one
protobuf description in the same way; ours comes from the Python signatures).

How a row's parameters travel (:func:`parameters`):

- a parameter named in the path (``{name}``) is a path parameter;
- ``GET`` and ``DELETE``: every other parameter is a query parameter; a list of scalars is the
  parameter repeated, another value that is not a scalar (a dict) is sent as JSON text, a time as
  ISO 8601 text;
- ``POST`` and ``PUT``: every other parameter is a field of the JSON body (unknown fields are
  refused); a ``**kwargs`` parameter is a body field of that name holding an object, spread
  into the call;
- ``stream="upload"``: the request body is the file (or a tar of files), the other parameters are
  query parameters, plus ``filename`` (the file's name, whose suffix names its format); the
  parameter the upload stands for is ``upload``: ``paths`` (files: one, or a tar of several),
  ``path`` (one file, or a folder sent as a tar of its files) or a folder (any other name: a tar of the folder's content, names relative
  to it, ``Content-Type: application/x-tar``);
- ``stream="download"``: the method writes into its ``dest`` parameter, which does not travel; the
  server calls it with a temporary folder and answers a tar of that folder, the method's return
  value (paths relative to ``dest``) in the ``X-Modelloop-Result`` header as JSON;
- parameters in :data:`SERVER_FILLED` (who is acting) of mutating operations are set by the
  server from the token, never by the caller (a read's ``actor`` is a filter); parameters in
  :data:`LOCAL_ONLY` (callbacks) cannot cross a network and do not travel.

How a result travels: ``TypeAdapter(return annotation).dump_python(value, mode="json")`` as the
JSON body, rebuilt by the client with ``validate_python``; a ``pyarrow.Table`` as an Arrow IPC
stream (``application/vnd.apache.arrow.stream``), ``bytes`` as ``application/octet-stream``.
``page=True`` rows return lists and take ``limit`` (default 100, at most 1,000) and ``offset``;
the answer carries ``X-Total-Count`` when the total is known.

Mutating operations are the rows whose ``http`` is not ``GET``; each call of one is audited.

Left out, because they cannot cross a network: methods returning live Python objects
(``models.load``, ``controller()``, ``monitoring.scheduler``, ``loops.compile``,
``endpoints.server_app``), methods taking Python objects (``runs.start`` / ``resume`` take a
pipeline), follow-style generators (``jobs.follow``: poll ``jobs.logs``), and what only the
server's own processes call (``jobs.execute`` / ``start``, ``triggers.due`` / ``on_event`` /
``run_pending``, ``monitoring.tick`` / ``due`` / ``after_ingest``, ``endpoints.advance``,
``datasets.recover``, ``datasets.ingest_micro_batch``, ``streams.consume``: a stream
consumer is a process of the server's machine; ``features.serve``: the serving port's lookup).
``features.definition`` and ``source_table`` return Python objects: ``features.show`` gives the
definition, ``datasets.to_arrow`` the rows. Left out because it writes a path on the server's disk, which a remote
caller must not name: ``monitoring.write_report`` (``models.register``, ``models.import_mlflow``
and ``monitoring.add_labels`` take their folder or file as an upload instead).
"""

from __future__ import annotations

import functools
import inspect
import os
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelloop.access.tokens import ROLES

__all__ = ["OPERATIONS", "ROLES", "Operation", "Param", "find", "parameters", "signature"]

Http = Literal["GET", "POST", "PUT", "DELETE"]

#: Who is acting: filled by the server from the caller's token, never sent by the caller.
SERVER_FILLED = frozenset({"actor", "by", "created_by"})
#: Callbacks and handles that cannot cross a network.
LOCAL_ONLY = frozenset({"progress", "on_start", "should_stop", "cancellable", "log", "on_run",
                        "on_tick"})  # fmt: skip
#: Pagination caps (query parameters ``limit`` and ``offset`` of ``page`` rows).
PAGE_DEFAULT = 100
PAGE_MAX = 1000


@dataclass(frozen=True)
class Operation:
    """One façade method as an HTTP route (under ``/api/v1``)."""

    service: str  # "datasets" (ws.datasets); "monitoring.baselines" (ws.monitoring.baselines);
    # "workspace" for a method of the Workspace itself
    method: str  # "versions" (ws.datasets.versions)
    http: Http
    path: str  # "/datasets/{name}/versions": path parameters are method parameters
    role: str  # the least role allowed: "viewer" | "operator" | "admin"
    stream: str | None = None  # None | "upload" (request body is a file) | "download" (a tar)
    page: bool = False  # returns a list: paginated (limit/offset)
    upload: str = "paths"  # the parameter an upload stands for (see the module's docstring)
    types: tuple[tuple[str, Any], ...] = ()  # parameter types the API narrows (a spec is a dict)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.method}"

    @property
    def mutating(self) -> bool:
        return self.http != "GET"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))


def _op(service, method, http, path, role=None, **kw) -> Operation:
    return Operation(service, method, http, path, role or ("viewer" if http == "GET" else "operator"),
                     **kw)  # fmt: skip


OPERATOR, ADMIN = "operator", "admin"

OPERATIONS: tuple[Operation, ...] = (
    # -- datasets
    _op("datasets", "list", "GET", "/datasets", page=True),
    _op("datasets", "versions", "GET", "/datasets/{name}/versions", page=True),
    _op("datasets", "get", "GET", "/datasets/{ref}"),
    _op("datasets", "stats", "GET", "/datasets/{ref}/stats"),
    _op("datasets", "head", "GET", "/datasets/{ref}/head"),
    _op("datasets", "to_arrow", "GET", "/datasets/{ref}/table"),
    _op("datasets", "quarantined", "GET", "/datasets/{ref}/quarantined"),
    _op("datasets", "sources", "GET", "/datasets/{ref}/sources", page=True),
    _op("datasets", "parts", "GET", "/datasets/{ref}/parts", page=True),
    _op("datasets", "online_features", "GET", "/datasets/{ref}/online-features"),
    _op("datasets", "ingest", "POST", "/datasets/{name}/ingest", OPERATOR, stream="upload"),
    _op("datasets", "delete", "DELETE", "/datasets/{ref}", ADMIN),
    _op("datasets", "append_rows", "POST", "/datasets/{name}/rows", OPERATOR),
    _op("datasets", "stream_status", "GET", "/datasets/{name}/stream"),
    # -- jobs
    _op("jobs", "list", "GET", "/jobs", page=True),
    _op("jobs", "search", "GET", "/jobs/search", page=True),
    _op("jobs", "compare", "GET", "/jobs/compare"),
    _op("jobs", "get", "GET", "/jobs/{job_id}"),
    _op("jobs", "logs", "GET", "/jobs/{job_id}/logs"),
    _op("jobs", "log_tail", "GET", "/jobs/{job_id}/log-tail"),
    _op("jobs", "metric_series", "GET", "/jobs/{job_id}/metrics"),
    _op("jobs", "report", "GET", "/jobs/{job_id}/report"),
    _op("jobs", "artifacts_of", "GET", "/jobs/{job_id}/artifacts", page=True),
    _op("jobs", "select_artifacts", "GET", "/jobs/{job_id}/artifacts/select"),
    _op("jobs", "download", "GET", "/jobs/{job_id}/artifacts/download", stream="download"),
    _op("jobs", "cancel", "POST", "/jobs/{job_id}/cancel", OPERATOR),
    # -- training (each a tracked job)
    _op("training", "train", "POST", "/training/train", OPERATOR),
    _op("training", "tune", "POST", "/training/tune", OPERATOR),
    _op("training", "evaluate", "POST", "/training/evaluate", OPERATOR),
    # -- models (the registry)
    _op("models", "list", "GET", "/models", page=True),
    _op("models", "versions", "GET", "/models/{name}/versions", page=True),
    _op("models", "history", "GET", "/models/{name}/history", page=True),
    _op("models", "alias_version", "GET", "/models/{name}/aliases/{alias}"),
    _op("models", "get", "GET", "/models/{ref}"),
    _op("models", "describe", "GET", "/models/{ref}/describe"),
    _op("models", "lineage", "GET", "/models/{ref}/lineage"),
    _op("models", "resolve", "GET", "/models/{ref}/resolve"),
    _op("models", "export", "GET", "/models/{ref}/export", stream="download"),
    _op("models", "register_from_job", "POST", "/models/{name}/versions", OPERATOR),
    # a package or an MLflow model folder may hold pickles, which run code when loaded: admins
    _op(
        "models",
        "register",
        "POST",
        "/models/{name}/packages",
        ADMIN,
        stream="upload",
        upload="package_dir",
    ),
    _op(
        "models",
        "import_mlflow",
        "POST",
        "/models/{name}/mlflow-imports",
        ADMIN,
        stream="upload",
        upload="folder",
    ),
    _op("models", "approve", "POST", "/models/{ref}/approve", ADMIN),
    _op("models", "reject", "POST", "/models/{ref}/reject", ADMIN),
    _op("models", "trust", "POST", "/models/{ref}/trust", ADMIN),
    _op("models", "delete", "DELETE", "/models/{ref}", ADMIN),
    _op("models", "set_alias", "PUT", "/models/{name}/aliases/{alias}", OPERATOR),
    _op("models", "remove_alias", "DELETE", "/models/{name}/aliases/{alias}", OPERATOR),
    _op("models", "rollback", "POST", "/models/{name}/rollback", OPERATOR),
    # -- pipeline runs
    _op("runs", "list", "GET", "/runs", page=True),
    _op("runs", "get", "GET", "/runs/{run_id}"),
    _op("runs", "steps", "GET", "/runs/{run_id}/steps"),
    _op("runs", "step", "GET", "/runs/{run_id}/steps/{name}"),
    _op("runs", "logs", "GET", "/runs/{run_id}/steps/{name}/logs"),
    _op("runs", "output", "GET", "/runs/{run_id}/steps/{name}/output"),
    _op("runs", "explain", "GET", "/runs/{run_id}/steps/{name}/explain"),
    _op("runs", "approve", "POST", "/runs/{run_id}/approve", ADMIN),
    _op("runs", "reject", "POST", "/runs/{run_id}/reject", ADMIN),
    # -- declarative loops
    _op("loops", "list", "GET", "/loops", page=True),
    _op("loops", "get", "GET", "/loops/{name}"),
    _op("loops", "get_spec", "GET", "/loops/{name}/spec"),
    _op("loops", "status", "GET", "/loops/{name}/status"),
    _op("loops", "apply", "POST", "/loops", OPERATOR, types=(("spec", dict),)),
    _op("loops", "sync", "POST", "/loops/{name}/sync", OPERATOR),
    _op("loops", "delete", "DELETE", "/loops/{name}", OPERATOR),
    # -- endpoints and rollouts
    _op("endpoints", "list", "GET", "/endpoints", page=True),
    _op("endpoints", "stats", "GET", "/endpoint-stats", page=True),
    _op("endpoints", "get", "GET", "/endpoints/{name}"),
    _op("endpoints", "describe", "GET", "/endpoints/{name}/describe"),
    _op("endpoints", "rollouts", "GET", "/endpoints/{name}/rollouts", page=True),
    _op("endpoints", "serving", "GET", "/models/{model_ref}/endpoints"),
    _op("endpoints", "create", "POST", "/endpoints", OPERATOR),
    _op("endpoints", "update", "PUT", "/endpoints/{name}", OPERATOR),
    _op("endpoints", "deploy", "POST", "/endpoints/{name}/deploy", OPERATOR),
    _op("endpoints", "rollback", "POST", "/endpoints/{name}/rollback", OPERATOR),
    _op("endpoints", "add_events", "POST", "/endpoints/{name}/events", OPERATOR),
    _op("endpoints", "delete", "DELETE", "/endpoints/{name}", OPERATOR),
    # -- batch transforms
    _op("transforms", "status", "GET", "/transforms/{job_id}"),
    _op("transforms", "run", "POST", "/transforms", OPERATOR),
    _op("transforms", "resume", "POST", "/transforms/{job_id}/resume", OPERATOR),
    # -- monitoring: monitors, their runs (violations are in a run's report), metrics, labels
    _op("monitoring", "monitors", "GET", "/monitors", page=True),
    _op("monitoring", "monitor", "GET", "/monitors/{name}"),
    _op("monitoring", "create_monitor", "POST", "/monitors", OPERATOR),
    _op("monitoring", "update_monitor", "PUT", "/monitors/{name}", OPERATOR),
    _op("monitoring", "delete_monitor", "DELETE", "/monitors/{name}", OPERATOR),
    _op("monitoring", "run", "POST", "/monitors/{name}/run", OPERATOR),
    _op("monitoring", "runs", "GET", "/monitor-runs", page=True),
    _op("monitoring", "run_record", "GET", "/monitor-runs/{run_id}"),
    _op("monitoring", "run_report", "GET", "/monitor-runs/{run_id}/report"),
    _op("monitoring", "ensure_baseline", "POST", "/baselines", OPERATOR),
    # -- baselines (ws.monitoring.baselines): a baseline's statistics travel as its document,
    # which the client makes a Baseline again (baselines.load); import uploads the file or folder
    _op("monitoring.baselines", "list", "GET", "/baselines", page=True),
    _op("monitoring.baselines", "get", "GET", "/baselines/{ref}"),
    _op("monitoring.baselines", "document", "GET", "/baselines/{ref}/document"),
    _op("monitoring.baselines", "create", "POST", "/datasets/{dataset_ref}/baseline", OPERATOR),
    _op("monitoring.baselines", "import_", "POST", "/baselines/{name}/import", OPERATOR,
        stream="upload", upload="path"),
    _op("monitoring.baselines", "export", "GET", "/baselines/{ref}/export", stream="download"),
    _op("monitoring.baselines", "delete", "DELETE", "/baselines/{ref}", OPERATOR),
    _op("monitoring", "metric_series", "GET", "/metrics", page=True),
    _op("monitoring", "metric", "GET", "/metrics/{name}"),
    _op("monitoring", "put_metric", "POST", "/metrics", OPERATOR),
    _op("monitoring", "add_label_records", "POST", "/endpoints/{endpoint}/labels", OPERATOR),
    _op(
        "monitoring",
        "add_labels",
        "POST",
        "/endpoints/{endpoint}/label-files",
        OPERATOR,
        stream="upload",
        upload="path",
    ),
    # -- alarms
    _op("alarms", "list", "GET", "/alarms", page=True),
    _op("alarms", "get", "GET", "/alarms/{name}"),
    _op("alarms", "history", "GET", "/alarms/{name}/history", page=True),
    _op("alarms", "create", "POST", "/alarms", OPERATOR),
    _op("alarms", "evaluate", "POST", "/alarm-evaluations", OPERATOR),
    _op("alarms", "delete", "DELETE", "/alarms/{name}", OPERATOR),
    # -- triggers (managed by admins; firing one by hand is an operator's)
    _op("triggers", "list", "GET", "/triggers", page=True),
    _op("triggers", "get", "GET", "/triggers/{name}"),
    _op("triggers", "history", "GET", "/trigger-firings", page=True),
    _op("triggers", "firing", "GET", "/trigger-firings/{firing_id}"),
    _op("triggers", "next_firings", "GET", "/trigger-schedule"),
    _op("triggers", "create", "POST", "/triggers", ADMIN),
    _op("triggers", "update", "PUT", "/triggers/{name}", ADMIN),
    _op("triggers", "pause", "POST", "/triggers/{name}/pause", ADMIN),
    _op("triggers", "resume", "POST", "/triggers/{name}/resume", ADMIN),
    _op("triggers", "delete", "DELETE", "/triggers/{name}", ADMIN),
    _op("triggers", "fire", "POST", "/triggers/{name}/fire", OPERATOR),
    # -- feature sets (definitions, point-in-time joins, the online store); a point-in-time
    # join is a read whose entity frame is a body: POST, a viewer's
    _op("features", "list", "GET", "/feature-sets", page=True),
    _op("features", "show", "GET", "/feature-sets/{name}"),
    _op("features", "recorded", "GET", "/feature-sets/{name}/recorded"),
    _op("features", "get_online", "GET", "/feature-sets/{name}/online", types=(("keys", list[str]),)),
    _op("features", "get_historical", "POST", "/feature-sets/{name}/historical", "viewer",
        types=(("entity_frame", list[dict[str, Any]]),)),
    _op("features", "apply", "POST", "/feature-sets", OPERATOR,
        types=(("definition", "YamlMapping"),)),
    _op("features", "backfill", "POST", "/feature-sets/{name}/backfill", OPERATOR),
    _op("features", "update", "POST", "/feature-sets/{name}/update", OPERATOR),
    _op("features", "push", "POST", "/feature-sets/{name}/rows", OPERATOR,
        types=(("rows", list[dict[str, Any]]),)),
    _op("features", "training_data", "POST", "/feature-sets/{name}/training-data", OPERATOR),
    _op("features", "delete", "DELETE", "/feature-sets/{name}", ADMIN),
    # -- explanations
    _op("explain", "bias", "GET", "/explain/bias"),
    # -- access: API tokens and the audit log (admins only; the log is never editable)
    _op("tokens", "list", "GET", "/tokens", ADMIN),
    _op("tokens", "get", "GET", "/tokens/{token}", ADMIN),
    _op("tokens", "create", "POST", "/tokens", ADMIN),
    _op("tokens", "revoke", "DELETE", "/tokens/{token}", ADMIN),
    _op("audit", "list", "GET", "/audit", ADMIN, page=True),
    # -- the workspace itself: its event log and who leads its controllers
    _op("workspace", "events", "GET", "/events", page=True),
    _op("workspace", "controller_status", "GET", "/controller"),
)

_BY_NAME = {op.name: op for op in OPERATIONS}


def find(service: str, method: str) -> Operation:
    """The row of ``ws.<service>.<method>``; KeyError when it has none (it cannot go remote)."""
    return _BY_NAME[f"{service}.{method}"]


# -- signatures -------------------------------------------------------------------------------


def service_class(service: str) -> type:
    """The class of ``ws.<service>``, imported when first asked (the server and the client need
    only the signatures; importing every service up front would cost the CLI's start-up)."""
    if service == "datasets":
        from modelloop.data.datasets import Datasets as cls
    elif service == "jobs":
        from modelloop.training.jobs import Jobs as cls
    elif service == "training":
        from modelloop.training.service import Training as cls
    elif service == "models":
        from modelloop.registry.registry import Registry as cls
    elif service == "runs":
        from modelloop.pipelines.runs import Runs as cls
    elif service == "loops":
        from modelloop.automation.apply import DeclaredLoops as cls
    elif service == "endpoints":
        from modelloop.serving.endpoints import Endpoints as cls
    elif service == "transforms":
        from modelloop.batch.transform import Transforms as cls
    elif service == "monitoring":
        from modelloop.monitoring.service import Monitoring as cls
    elif service == "monitoring.baselines":
        from modelloop.monitoring.baselines import Baselines as cls
    elif service == "alarms":
        from modelloop.telemetry.alarms import Alarms as cls
    elif service == "triggers":
        from modelloop.automation.triggers import Triggers as cls
    elif service == "explain":
        from modelloop.explain.service import Explain as cls
    elif service == "features":
        from modelloop.features.service import FeatureSets as cls
    elif service == "tokens":
        from modelloop.access.tokens import Tokens as cls
    elif service == "audit":
        from modelloop.access.audit import Audit as cls
    elif service == "workspace":
        cls = _WorkspaceMethods
    else:
        raise KeyError(service)
    return cls


class _WorkspaceMethods:
    """The signatures of the Workspace's own methods in the table (this floor is below the
    façade and cannot import it); ``tests/api`` checks they match ``Workspace``'s."""

    def events(self, *, after_id: int = 0, kind: str | None = None,
               limit: int = 1000, newest_first: bool = False) -> list[dict]: ...  # fmt: skip

    def controller_status(self) -> dict: ...


def _namespace() -> dict:
    """Names the services' annotations use under ``TYPE_CHECKING`` only: references are text
    over HTTP."""
    import pyarrow as pa

    return {"pa": pa, "os": os, "Ref": str, "ModelRef": str, "Any": Any,
            "YamlMapping": _yaml_mapping()}  # fmt: skip


def _yaml_mapping():
    """A definition in a body: an object, or YAML text holding one (what ``features.yaml``
    says), read as the object; never a path, which would name a file of the server's."""
    from typing import Annotated

    from pydantic import AfterValidator

    def read(value):
        if isinstance(value, str):
            import yaml

            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ValueError(f"not valid YAML: {exc}") from None
            if not isinstance(value, dict):
                raise ValueError("YAML text holding a mapping (the definition)")
        return value

    return Annotated[dict[str, Any] | str, AfterValidator(read)]


@functools.cache
def signature(op: Operation) -> tuple[inspect.Signature, dict[str, Any]]:
    """The method's signature (without ``self``) and its resolved type hints (``"return"``
    included); an annotation that cannot be resolved is ``Any``, an absent one too."""
    fn = getattr(service_class(op.service), op.method)
    sig = inspect.signature(fn)
    sig = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "self"])
    namespace = {**getattr(fn, "__globals__", {}), **_namespace()}
    overrides = dict(op.types)
    hints: dict[str, Any] = {}
    for p in sig.parameters.values():
        hints[p.name] = _resolve(overrides.get(p.name) or p.annotation, namespace, p.empty)
    hints["return"] = _resolve(sig.return_annotation, namespace, sig.empty)
    return sig, hints


def _resolve(annotation, namespace: dict, empty) -> Any:
    if annotation is empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace)  # noqa: S307 - our own annotations
    except Exception:  # noqa: BLE001 - an annotation only a type checker reads: unchecked
        return Any


Where = Literal["path", "query", "body", "spread", "server", "local", "stream"]


@dataclass(frozen=True)
class Param:
    """One parameter of an operation's method and how it travels."""

    name: str
    where: Where  # "spread": a **kwargs body object; "server": filled by the server;
    # "local": does not travel; "stream": the file (upload) or the destination (download)
    hint: Any
    required: bool
    default: Any


def parameters(op: Operation) -> tuple[Param, ...]:
    """Every parameter of ``op``'s method with where it travels (see the module's docstring)."""
    sig, hints = signature(op)
    out = []
    in_path = set(op.path_params)
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            continue
        required = p.default is p.empty and p.kind is not p.VAR_KEYWORD
        if p.name in in_path:
            where = "path"
        elif p.name in SERVER_FILLED and op.mutating:  # a read's "actor" is a filter (audit)
            where = "server"
        elif p.name in LOCAL_ONLY or _is_callable(hints[p.name]):
            where = "local"
        elif (op.stream == "upload" and p.name == op.upload) or (
            op.stream == "download" and p.name == "dest"
        ):
            where = "stream"
        elif p.kind is p.VAR_KEYWORD:
            where = "spread"
        elif op.http in ("GET", "DELETE") or op.stream == "upload":
            where = "query"
        else:
            where = "body"
        out.append(Param(p.name, where, hints[p.name], required,
                         None if p.default is p.empty else p.default))  # fmt: skip
    return tuple(out)


def _is_callable(hint) -> bool:
    import collections.abc

    origin = typing.get_origin(hint)
    if origin is collections.abc.Callable:
        return True
    return any(_is_callable(a) for a in typing.get_args(hint)) if origin is not None else False


# -- how a query parameter travels (the server reads it so; the client sends it so) ------------
#: Types a query parameter carries as text.
SCALARS = (str, int, float, bool, datetime, type(None))


def union_members(hint) -> tuple:
    """``a | b`` -> ``(a, b)``; any other annotation -> ``(hint,)``."""
    unions = (typing.Union, types.UnionType)
    return typing.get_args(hint) if typing.get_origin(hint) in unions else (hint,)


def is_scalar(hint) -> bool:
    return all(m in SCALARS for m in union_members(hint))


def repeated_item(hint) -> Any | None:
    """The item type when the query carries ``hint`` as the parameter repeated (``list[<scalar>]``,
    optionally ``| None``); None: a value that is not a scalar travels as JSON text."""
    members = union_members(hint)
    lists = [m for m in members if typing.get_origin(m) is list]
    if len(lists) != 1 or any(m is not type(None) for m in members if m is not lists[0]):
        return None
    (item,) = typing.get_args(lists[0]) or (str,)
    return item if is_scalar(item) else None
