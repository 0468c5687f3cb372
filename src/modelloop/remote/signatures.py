"""How an operation's parameters travel, from the signature of the façade method its row names
(the rows themselves are in :mod:`modelloop.remote.operations`); the server's request models
(``modelloop.api.params``) and the remote client (``modelloop.remote.workspace``) both read it
from here, so the two sides cannot disagree.

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
"""

from __future__ import annotations

import functools
import inspect
import os
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from modelloop.remote.operations import Operation

__all__ = ["LOCAL_ONLY", "SCALARS", "SERVER_FILLED", "Param", "is_scalar", "parameters",
           "repeated_item", "service_class", "signature", "union_members"]  # fmt: skip

#: Who is acting: filled by the server from the caller's token, never sent by the caller.
SERVER_FILLED = frozenset({"actor", "by", "created_by"})
#: Callbacks and handles that cannot cross a network, and what only the server's own processes
#: pass (``started_by``: the firing of a trigger that started a run).
LOCAL_ONLY = frozenset({"progress", "on_progress", "on_start", "should_stop", "cancellable", "log",
                        "on_run", "on_tick", "started_by"})  # fmt: skip


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
            "YamlMapping": _yaml_mapping(), "LoopName": _loop_name()}  # fmt: skip


def _loop_name():
    """A loop named in a body: an applied loop's name; a spec file travels as its content (the
    client reads it), never as a path, which would name a file of the server's."""
    from typing import Annotated

    from pydantic import AfterValidator

    def check(value: str) -> str:
        if not value or "/" in value or "\\" in value or value.endswith((".yaml", ".yml")):
            raise ValueError("the name of an applied loop, or a spec as an object")
        return value

    return Annotated[str, AfterValidator(check)]


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


def _check_report() -> type:
    from modelloop.quality.checks import CheckReport

    return CheckReport


#: Classes of annotations under ``TYPE_CHECKING`` (their modules are slow to import), imported
#: only when an annotation names them.
_LAZY = {"CheckReport": _check_report}


class _Lazy(dict):
    def __missing__(self, name: str):
        if name not in _LAZY:
            raise KeyError(name)
        value = self[name] = _LAZY[name]()
        return value


def _resolve(annotation, namespace: dict, empty) -> Any:
    if annotation is empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace, _Lazy())  # noqa: S307 - our own annotations
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
