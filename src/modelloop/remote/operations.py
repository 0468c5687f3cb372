"""The operations of the control-plane API: one row per façade method a user calls over HTTP.

The server (``modelloop.api``) and the remote client (``modelloop.remote``) are both generated
from this table and from the signatures of the service methods it names, so every row is a route
and a client method, and nothing else is: "every façade operation" holds by construction, and a
test that walks the OpenAPI document reaches every route (MLflow's REST API is generated from one
protobuf description in the same way; ours comes from the Python signatures).

How a row's parameters travel: :mod:`modelloop.remote.signatures`.

How a result travels: ``TypeAdapter(return annotation).dump_python(value, mode="json")`` as the
JSON body, rebuilt by the client with ``validate_python``; a ``pyarrow.Table`` as an Arrow IPC
stream (``application/vnd.apache.arrow.stream``; a row with ``batches`` sends the record batches
of that method as they are read, so a table is never whole in the server's memory), ``bytes``
as ``application/octet-stream``.
A row with ``progress`` (the name of the method's callback parameter) answers a caller that
sends ``Accept: application/x-ndjson`` with the callback's reports as they happen, one JSON object
a line, then the result (``modelloop.api.progress``); the client passes them to its own callback.
``page=True`` rows return lists and take ``limit`` (default 100, at most 1,000) and ``offset``;
the answer carries ``X-Total-Count`` when the total is known.

Mutating operations are the rows whose ``http`` is not ``GET``; each call of one is audited.

Left out, because they cannot cross a network: methods returning live Python objects
(``models.load``, ``controller()``, ``loops.compile``, ``endpoints.server_app``), a process
rather than a call (``monitoring.scheduler`` ticks until stopped: ``modelloop up`` runs it on
the server's machine; ``monitoring.run`` runs one monitor now), methods taking Python objects (``runs.start`` / ``resume`` take a
pipeline), follow-style generators (``jobs.follow``: poll ``jobs.logs``), and what only the
server's own processes call (``jobs.execute`` / ``start``, ``triggers.due`` / ``on_event`` /
``run_pending``, ``monitoring.tick`` / ``due`` / ``after_ingest``, ``endpoints.advance``,
``datasets.recover``, ``datasets.ingest_micro_batch``, ``streams.consume``: a stream
consumer is a process of the server's machine; ``features.serve``: the serving port's lookup).
``features.definition`` and ``source_table`` return Python objects: ``features.show`` gives the
definition, ``datasets.to_arrow`` the rows. Left out because it writes a path on the server's disk, which a remote
caller must not name: ``monitoring.write_report`` (``models.register``, ``models.import_mlflow``
and ``monitoring.add_labels`` take their folder or file as an upload instead).

Left out because only the server's own code calls them: ``audit.record`` (the server records
each call), ``tokens.verify`` / ``cached`` (it checks each token), ``jobs.run`` / ``warm_up`` /
``log_path`` (a worker's; the log is read by ``jobs.logs``), ``models.mark_deployed`` /
``package_dir`` (what a deploy records; a package leaves by ``models.export``),
``runs.needs_runner`` / ``started_by_firing`` and ``triggers.wait`` (the controller's),
``features.close``, ``monitoring.put_metrics`` (``put_metric`` is the route),
``monitoring.baselines.ensure`` (a loop step's; ``baselines.create`` is the route),
``endpoints.wait`` (``endpoints.deploy`` waits with its progress; servers drive the rest),
``loops.result`` (``loops.run`` returns it; an earlier run: ``runs.get``). Left out because
they return or take Python objects: ``training.training_rows``, ``explain.attributions`` (an
object of frames), ``loops.validate`` (a ``LoopSpec``; ``loop validate`` compiles the loop too,
where the workspace is), ``transforms.plan`` (takes ``TransformOptions``; ``transforms.run``
checks the same), ``endpoints.capture`` (records, or a frame: ``monitoring.check(endpoint=)``
reads the traffic on the server), ``runs.report`` (``runs callback`` resumes the run where the
workspace is: ``runs.resume`` takes a pipeline).

Composed by the remote client from rows (``modelloop.remote.workspace``): ``jobs.follow``,
``monitoring.baselines.load``, ``datasets.to_pandas`` and ``datasets.iter_batches`` (from
``datasets.to_arrow``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modelloop.access.tokens import ROLES

__all__ = ["OPERATIONS", "ROLES", "Operation", "find"]

Http = Literal["GET", "POST", "PUT", "DELETE"]

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
    progress: str | None = None  # the callback parameter whose reports the route can stream
    batches: str | None = None  # a method of the same parameters yielding the result's Arrow
    # record batches: the route streams them, the table never whole in the server's memory

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
    _op("datasets", "to_arrow", "GET", "/datasets/{ref}/table", batches="iter_batches"),
    _op("datasets", "quarantined", "GET", "/datasets/{ref}/quarantined"),
    _op("datasets", "quarantine_rows", "GET", "/datasets/{ref}/quarantined/rows", page=True),
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
    _op("training", "train", "POST", "/training/train", OPERATOR, progress="on_start"),
    _op("training", "tune", "POST", "/training/tune", OPERATOR, progress="on_start"),
    _op("training", "evaluate", "POST", "/training/evaluate", OPERATOR),
    # -- models (the registry)
    _op("models", "list", "GET", "/models", page=True),
    _op("models", "versions", "GET", "/models/{name}/versions", page=True),
    _op("models", "history", "GET", "/models/{name}/history", page=True),
    _op("models", "aliases", "GET", "/models/{name}/aliases"),
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
    _op("loops", "apply", "POST", "/loops", OPERATOR, types=(("spec", "dict | LoopName"),)),
    _op("loops", "run", "POST", "/loop-runs", OPERATOR, types=(("spec", "dict | LoopName"),),
        progress="on_progress"),
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
    _op("endpoints", "deploy", "POST", "/endpoints/{name}/deploy", OPERATOR, progress="progress"),
    _op("endpoints", "rollback", "POST", "/endpoints/{name}/rollback", OPERATOR),
    _op("endpoints", "add_events", "POST", "/endpoints/{name}/events", OPERATOR),
    _op("endpoints", "delete", "DELETE", "/endpoints/{name}", OPERATOR),
    # -- batch transforms
    _op("transforms", "status", "GET", "/transforms/{job_id}"),
    _op("transforms", "run", "POST", "/transforms", OPERATOR, progress="progress"),
    _op("transforms", "resume", "POST", "/transforms/{job_id}/resume", OPERATOR,
        progress="progress"),
    # -- monitoring: monitors, their runs (violations are in a run's report), metrics, labels
    _op("monitoring", "monitors", "GET", "/monitors", page=True),
    _op("monitoring", "monitor", "GET", "/monitors/{name}"),
    _op("monitoring", "create_monitor", "POST", "/monitors", OPERATOR),
    _op("monitoring", "update_monitor", "PUT", "/monitors/{name}", OPERATOR),
    _op("monitoring", "delete_monitor", "DELETE", "/monitors/{name}", OPERATOR),
    _op("monitoring", "run", "POST", "/monitors/{name}/run", OPERATOR),
    # a check reads a dataset version or an endpoint's traffic (a file named is the server's:
    # an operator's, as a batch input is; the client refuses its own files by name)
    _op("monitoring", "check", "POST", "/checks", OPERATOR),
    _op("monitoring", "runs", "GET", "/monitor-runs", page=True),
    _op("monitoring", "run_record", "GET", "/monitor-runs/{run_id}"),
    _op("monitoring", "run_report", "GET", "/monitor-runs/{run_id}/report"),
    _op("monitoring", "compare", "GET", "/datasets/{ref}/comparison"),
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


