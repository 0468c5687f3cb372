"""Loading a run's pipeline again in another process (``runs resume``, ``runs approve``).

A run records where its pipeline comes from (``spec["source"]``): the module, qualified name and
file of a ``@pipeline`` function, or a named loader with its arguments (a ``loop.yaml`` compiled
again). User code is loaded with :func:`modelloop.common.loading.load_object`; loaders are registered here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from modelloop.common.loading import load_object
from modelloop.errors import InvalidInput, ModelloopError, NotFound
from modelloop.pipelines.graph import Pipeline


def _loaders() -> dict[str, Callable[..., Pipeline]]:
    """Builders of pipelines that are not ``@pipeline`` functions, by the name a run records."""
    from modelloop.pipelines.loop import compile_loop

    return {"loop": compile_loop}


#: Loader names recorded by earlier versions, as "module:function".
_EARLIER = {"compile_loop": "loop"}


def load_pipeline(source: dict | None) -> Pipeline:
    """The :class:`Pipeline` a run's ``spec["source"]`` points at (to resume it elsewhere)."""
    if not source:
        raise InvalidInput(
            "this run does not say where its pipeline's code is",
            hint="resume it from Python: pipeline.resume(workspace, RUN)",
        )
    if "loader" in source:
        name = source["loader"]
        name = _EARLIER.get(name.rpartition(":")[2], name) if ":" in name else name
        loaders = _loaders()
        if name not in loaders:
            raise InvalidInput(f"this run was built by an unknown loader {source['loader']!r}")
        obj = loaders[name](**source.get("args", {}))
    else:
        obj = _load(source)
    if not isinstance(obj, Pipeline):
        raise InvalidInput(f"{source} is not a pipeline (found {type(obj).__name__})")
    return obj


def _load(source: dict):
    """The ``@pipeline`` object: from its module if importable here, else from its file."""
    qualname = source["qualname"]
    if "<locals>" in qualname:
        raise InvalidInput(
            f"pipeline {qualname} was defined inside a function, so another process cannot load it",
            hint="define it at module level, or resume it from Python: pipeline.resume(ws, RUN)",
        )
    if source.get("module") not in (None, "__main__"):
        try:
            return load_object(f"{source['module']}:{qualname}", what="pipeline")
        except ModelloopError:
            pass  # not importable here: try its file
    path = source.get("file")
    if not path or not os.path.exists(path):
        raise NotFound(
            f"cannot find the pipeline's code ({source.get('module')} in {path})",
            hint="run 'modelloop runs resume' where that file exists",
        )
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:  # as when the file ran as a script: its folder is importable
        sys.path.insert(0, folder)
    return load_object(f"{path}:{qualname}", what="pipeline")
