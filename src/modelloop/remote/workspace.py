"""A workspace behind the API: ``Workspace.connect(url, token=...)`` returns a
:class:`RemoteWorkspace` whose services have the local services' methods, each one an HTTP call.

Nothing here is written per operation: the services and methods come from the operations table
(:data:`modelloop.remote.operations.OPERATIONS`, the one the server is built from), the arguments
are bound to the local method's signature (so positional and keyword calls work as they do
locally), and the answer is rebuilt from the method's return annotation
(:mod:`modelloop.remote.codec`). Arguments that cannot cross a network (callbacks such as
``progress``) stay on this side; files named by an upload operation are streamed from disk, and a
download operation's ``dest`` is written as the body arrives.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modelloop import errors
from modelloop.remote import codec
from modelloop.remote.client import Transport

#: What a local workspace is made of, which a remote one has only on the server's machine.
_LOCAL_PARTS = ("root", "config", "store", "artifacts", "events_stream", "metric_series", "labels")


def _operations() -> tuple:
    from modelloop.remote.operations import OPERATIONS

    return OPERATIONS


class RemoteWorkspace:
    """The SDK against a modelloop API server (``https://host:port``): ``ws.datasets.list()``,
    ``ws.models.approve(...)`` … as on a local :class:`~modelloop.workspace.Workspace`, with the
    token's role deciding what is allowed. Only what the API offers is here: a local-only method
    (``models.load`` returns a live model, ``controller()`` runs where the store is) raises
    :class:`~modelloop.errors.InvalidInput` saying so."""

    is_remote = True

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0,
                 verify: str | bool | None = None):  # fmt: skip
        self.url = url.rstrip("/")
        self.transport = Transport(self.url, token, timeout=timeout, verify=verify)
        self._services: dict[str, RemoteService] = {}

    @functools.cached_property
    def _table(self) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = {}
        for op in _operations():
            table.setdefault(op.service, {})[op.method] = op
        return table

    def service(self, name: str) -> RemoteService:
        if name not in self._services:
            known = name in self._table or any(s.startswith(name + ".") for s in self._table)
            if not known:
                raise AttributeError(name)
            self._services[name] = RemoteService(self, name)
        return self._services[name]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.service(name)
        except AttributeError:
            pass
        op = self._table.get("workspace", {}).get(name)  # the workspace's own (ws.events(...))
        if op is not None:
            return _bound_call(self, op)
        if name in _LOCAL_PARTS:  # not methods: refused when touched, not when called
            _local_only(name)()
        return _local_only(name)

    def call(self, op, *args, **kwargs) -> Any:
        """Call operation ``op`` (an :class:`~modelloop.remote.operations.Operation`) with the
        arguments of its local method, as :mod:`modelloop.remote.signatures` says they travel."""
        from modelloop.remote.signatures import parameters, signature

        sig, hints = signature(op)
        arguments = _bind(sig, f"ws.{op.name}", args, kwargs)
        if (op.service, op.method) in _PREPARE:
            _PREPARE[op.service, op.method](arguments)
        path: dict = {}
        query: dict = {}
        body: dict = {}
        stream = None
        for p in parameters(op):
            if p.where == "spread":  # **kwargs: _bind spread them among the named arguments
                spread = {k: v for k, v in arguments.items() if k not in sig.parameters}
                if spread:
                    body[p.name] = codec.encode(spread)
                continue
            if p.name not in arguments:
                continue
            value = arguments[p.name]
            if p.where == "path":
                path[p.name] = quote(str(value), safe="")
            elif p.where == "query":
                query[p.name] = value if _plain(value, p.hint) else json.dumps(codec.encode(value))
            elif p.where == "body":
                body[p.name] = codec.encode(value)
            elif p.where == "stream":
                stream = value
            # "server" (who acts: the token) and "local" (callbacks) stay here
        if op.page and "limit" not in arguments and "limit" in sig.parameters:
            query["limit"] = sig.parameters["limit"].default  # the method's own default
        url = op.path.format(**path)
        if op.stream == "upload":
            response = self._upload(op, url, query, stream)
        elif op.stream == "download":
            return self._download(op, url, query, Path(stream if stream is not None else "."),
                                  hints.get("return"))
        elif op.page:
            return self._pages(op, url, query, hints.get("return"))
        elif op.progress:  # streamed even without a callback: heartbeats keep a long call open
            return self._with_progress(op, url, query, body, arguments.get(op.progress),
                                       hints.get("return"))
        else:
            response = self.transport.request(op.http, url, params=query,
                                              json=body if op.http in ("POST", "PUT") else None)
        return _result(response, hints.get("return"))

    def _with_progress(self, op, url: str, query: dict, body: dict, report, hint) -> Any:
        """A call whose progress the server reports as it happens: each report is passed to
        ``report`` (the caller's callback, if any) here, as the local method would have called
        it; the stream's heartbeats keep a call longer than the read timeout (a training job, a
        bake) open."""
        for event in self.transport.events(op.http, url, params=query, json=body):
            if "progress" in event:
                if callable(report):
                    report(event["progress"])
            elif "result" in event:
                return codec.decode(event["result"], hint)
        raise errors.ModelloopError(f"ws.{op.name}: the server's answer ended without a result",
                                    hint="the server stopped mid-call: check its log")  # fmt: skip

    def _pages(self, op, url: str, query: dict, hint) -> list:
        """Every row of a paginated list, page after page (the local method returns them all,
        or as many as its own ``limit`` asks for)."""
        from modelloop.remote.operations import PAGE_MAX

        wanted = query.pop("limit", None)  # None: every row
        offset = int(query.pop("offset", 0) or 0)
        rows: list = []
        while True:
            size = PAGE_MAX if wanted is None else min(PAGE_MAX, int(wanted) - len(rows))
            if size <= 0:
                break
            response = self.transport.request(
                op.http, url, params={**query, "limit": size, "offset": offset + len(rows)})
            page = response.json()
            rows.extend(page)
            total = response.headers.get("x-total-count")
            if len(page) < size or (total is not None and offset + len(rows) >= int(total)):
                break
        return codec.decode(rows, hint)

    def _upload(self, op, url: str, query: dict, files) -> httpx.Response:
        """One request whose body is the file, or a tar of the files when there are several."""
        if op.upload not in ("paths", "path") or (
            op.upload == "path" and isinstance(files, str | os.PathLike) and Path(files).is_dir()
        ):
            return self._upload_folder(op, url, query, files)
        local = _expand(files, query.get("format"))
        if len(local) == 1:
            return self.transport.request(op.http, url, upload=local[0],
                                          params={**query, "filename": local[0].name})
        with tempfile.TemporaryDirectory(prefix="modelloop-upload-") as tmp:
            archive = Path(tmp) / "files.tar"
            names = [f.name for f in local]
            if names != sorted(set(names)):  # the server takes them in name order: keep ours
                names = [f"{i:04d}-{n}" for i, n in enumerate(names)]
            with tarfile.open(archive, "w") as tar:  # files are added in chunks: bounded memory
                for file, name in zip(local, names, strict=True):
                    tar.add(file, arcname=name)
            return self.transport.request(op.http, url, upload=archive, params=query,
                                          content_type="application/x-tar")

    def _upload_folder(self, op, url: str, query: dict, folder) -> httpx.Response:
        """A folder (a model package, an MLflow model) as a tar of its files, named relative to
        it, as the server unpacks it (``operations``: an upload standing for a folder)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise errors.InvalidInput(
                f"{op.upload} {str(folder)!r}: not a folder on this machine",
                hint=f"ws.{op.name} through the API uploads a local folder; a URI of a tracking "
                     "store is read only where the workspace is (unset MODELLOOP_URL there)")
        with tempfile.TemporaryDirectory(prefix="modelloop-upload-") as tmp:
            archive = Path(tmp) / "folder.tar"
            with tarfile.open(archive, "w") as tar:
                for path in sorted(folder.rglob("*")):
                    if path.is_symlink():  # the server takes files only: say so here
                        raise errors.InvalidInput(
                            f"'{path}' is a symbolic link: a folder sent to the API holds files",
                            hint="copy the file it points to into the folder")
                    if path.is_file():
                        tar.add(path, arcname=path.relative_to(folder).as_posix())
            return self.transport.request(op.http, url, upload=archive, params=query,
                                          content_type="application/x-tar")

    def _download(self, op, url: str, query: dict, dest: Path, hint) -> Any:
        """The answer (a tar of what the method wrote) unpacked into ``dest``; the method's
        result (paths relative to ``dest``) is in the ``X-Modelloop-Result`` header."""
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest, prefix=".download-", suffix=".tar",
                                         delete=False) as tmp:
            archive = Path(tmp.name)
        try:
            headers = self.transport.download(op.http, url, archive, params=query)
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
        finally:
            archive.unlink(missing_ok=True)
        result = json.loads(headers.get("x-modelloop-result", "null"))
        return codec.decode(_under(dest, result), hint)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteWorkspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteWorkspace({self.url!r})"


class RemoteService:
    """``ws.<service>`` of a remote workspace: its methods are the operations of the table."""

    def __init__(self, ws: RemoteWorkspace, name: str):
        self._ws = ws
        self._name = name

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        op = self._ws._table.get(self._name, {}).get(method)
        if op is not None:
            call = _bound_call(self._ws, op)
            setattr(self, method, call)
            return call
        nested = f"{self._name}.{method}"
        if any(s == nested or s.startswith(nested + ".") for s in self._ws._table):
            return self._ws.service(nested)
        if method in self._ws._table:  # ws.monitoring.alarms is ws.alarms, as it is locally
            return self._ws.service(method)
        extra = _CLIENT_SIDE.get((self._name, method))
        if extra is not None:
            return functools.partial(extra, self._ws)
        return _local_only(f"{self._name}.{method}")

    def __repr__(self) -> str:
        return f"<remote ws.{self._name} of {self._ws.url}>"


def _bound_call(ws: RemoteWorkspace, op):
    def call(*args, **kwargs):
        return ws.call(op, *args, **kwargs)

    call.__name__ = op.method
    call.__qualname__ = f"{op.service}.{op.method}"
    return call


def _local_only(what: str):
    def refuse(*args, **kwargs):
        raise errors.InvalidInput(
            f"ws.{what} runs only where the workspace is, not through the modelloop API",
            hint="run it on the server's machine (unset MODELLOOP_URL there)",
        )

    refuse.__name__ = what.rsplit(".", 1)[-1]
    return refuse


def _bind(sig: inspect.Signature, where: str, args: tuple, kwargs: dict) -> dict:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise errors.InvalidInput(f"{where}(): {exc}", hint=f"its parameters: {sig}") from None
    arguments = dict(bound.arguments)
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD and p.name in arguments:
            arguments.update(arguments.pop(p.name))
        elif p.kind is p.VAR_POSITIONAL and p.name in arguments:
            arguments[p.name] = list(arguments[p.name])
    return arguments


def _plain(value, hint) -> bool:
    """Whether ``value`` travels as query text: a scalar, or a list the API reads as the parameter
    repeated (``signatures.repeated_item``); anything else (a dict, a list of objects) as JSON
    text."""
    from modelloop.remote.signatures import SCALARS, repeated_item

    if not isinstance(value, list | tuple):
        return isinstance(value, (*SCALARS, os.PathLike))
    return repeated_item(hint) is not None


def _result(response: httpx.Response, hint) -> Any:
    """A call's value from its answer: an Arrow IPC stream as a table, bytes as they came, JSON
    rebuilt as the return annotation says."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/vnd.apache.arrow.stream"):
        import pyarrow as pa

        table = pa.ipc.open_stream(pa.py_buffer(response.content)).read_all()
        if getattr(hint, "__name__", None) == "DataFrame":  # a pandas frame travels as Arrow
            return table.to_pandas()
        return table
    if kind.startswith("application/octet-stream"):
        return response.content
    if not response.content:
        return None
    return codec.decode(response.json(), hint)


def _under(dest: Path, result):
    """Paths the server gave relative to its ``dest`` as paths under ours."""
    if isinstance(result, str):
        return str(dest / result)
    if isinstance(result, list):
        return [_under(dest, r) for r in result]
    return result


def _expand(files, fmt: str | None = None) -> list[Path]:
    """The local files an upload names (files, folders, globs, as ingest takes them)."""
    return [Path(f.path) for f in _found(files, fmt)]


def _found(files, fmt: str | None = None) -> list:
    from modelloop.tabular.locations import find_files

    items = [files] if isinstance(files, str | os.PathLike) else list(files or [])
    return find_files([str(f) for f in items], fmt)


# -- methods a remote workspace composes on this side from operations -------------------------------
def _follow(ws: RemoteWorkspace, job_id, *, poll: float = 0.5, skip: bool = False) -> Iterator[str]:
    """``jobs.follow``: the job's log lines as they are written, by polling its log and status
    (the log file is on the server's machine)."""
    from modelloop.training.job_context import ACTIVE

    jobs = ws.service("jobs")
    shown = len(jobs.logs(job_id).splitlines()) if skip else 0
    while True:
        status = jobs.get(job_id)["status"]
        lines = jobs.logs(job_id).splitlines()
        yield from lines[shown:]
        shown = len(lines)
        if status not in ACTIVE:
            return
        time.sleep(poll)


def _load_baseline(ws: RemoteWorkspace, ref: str):
    """``baselines.load``: baseline files of this machine are read here, as locally; a stored
    baseline comes as its document (``baselines.document``) and is made a Baseline again."""
    from modelloop.monitoring.baselines import read_baseline_files
    from modelloop.quality.baseline import Baseline

    if os.path.exists(ref) and (os.path.isdir(ref) or str(ref).endswith(".json")):
        return read_baseline_files(ref)[0]
    return Baseline.from_dict(ws.service("monitoring.baselines").document(ref))


def _to_pandas(ws: RemoteWorkspace, ref, **kwargs):
    """``datasets.to_pandas``: the rows as ``to_arrow`` sends them (batch by batch), as a frame."""
    return ws.service("datasets").to_arrow(ref, **kwargs).to_pandas()


def _iter_batches(ws: RemoteWorkspace, ref, *, columns=None, batch_size: int = 65_536,
                  since=None, until=None) -> Iterator:  # fmt: skip
    """``datasets.iter_batches``: the record batches of the table ``to_arrow`` sends (whole
    on this side, unlike locally)."""
    table = ws.service("datasets").to_arrow(ref, columns=columns, since=since, until=until)
    return iter(table.to_batches(max_chunksize=batch_size))


_CLIENT_SIDE = {("jobs", "follow"): _follow, ("monitoring.baselines", "load"): _load_baseline,
                ("datasets", "to_pandas"): _to_pandas,
                ("datasets", "iter_batches"): _iter_batches}  # fmt: skip


# -- arguments read on this side before they travel ------------------------------------------------
def _local_definition(arguments: dict) -> None:
    """``features.apply(path)``: the path names a file of this machine; its YAML text travels
    (the server reads a definition as YAML text or an object, never a path of its own disk)."""
    value = arguments.get("definition")
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        try:
            arguments["definition"] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise errors.NotFound(f"no feature definition file {str(path)!r}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.InvalidInput(f"cannot read {str(path)!r}: {exc}") from None


def _local_sources(arguments: dict) -> None:
    """``datasets.ingest(paths)``: the files are found here and sent as copies; each is recorded
    by the path that named it on this machine (``source_names``), as a local ingest records it,
    not by the name the server gave its copy."""
    if arguments.get("source_names") is None and arguments.get("paths"):
        found = _found(arguments["paths"], arguments.get("format"))
        arguments["paths"] = [f.path for f in found]
        arguments["source_names"] = [f.name for f in found]


def _local_spec(arguments: dict) -> None:
    """``loops.run(spec)`` / ``loops.apply(spec)``: a spec file of this machine travels as its
    content (the mapping: the server reads no path of the caller's); a name (of an applied loop)
    as it is."""
    spec = arguments.get("spec")
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and (
            os.sep in spec or spec.endswith((".yaml", ".yml")) or Path(spec).is_file())):
        from modelloop.pipelines.loop_spec import read

        arguments["spec"] = read(spec)[0]


def _no_local_files(arguments: dict) -> None:
    """``monitoring.check``: the server reads what it checks; a file of this machine is refused
    by name (the server would look for a file of its own of that name)."""
    for name, hint in (("data", "ingest it ('modelloop data ingest') and check the version"),
                       ("baseline", "import it ('modelloop baseline import') and check against "
                                    "its name")):  # fmt: skip
        value = arguments.get(name)
        if isinstance(value, str | os.PathLike) and os.path.exists(value):
            raise errors.InvalidInput(
                f"{name} {str(value)!r} is a file of this machine: a check through the modelloop "
                "API reads the server's datasets, baselines and traffic", hint=hint)


_PREPARE = {("features", "apply"): _local_definition, ("datasets", "ingest"): _local_sources,
            ("loops", "run"): _local_spec, ("loops", "apply"): _local_spec,
            ("monitoring", "check"): _no_local_files}  # fmt: skip
