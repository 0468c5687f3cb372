"""Explanations at the endpoint: ``POST /endpoints/{name}/explain`` answers predictions with
their SHAP attributions, per input column, for variants whose spec allows it
(``{"model": "churn@3", "explain": true}``).

The body is what ``/invocations`` takes (JSON, CSV, JSON Lines; ``X-Amzn-SageMaker-Target-Variant``
and ``X-Modelloop-Routing-Key`` pick the variant as there); the prediction goes through the data
plane as any request (counted, captured). Attributions come from
:func:`modelloop.explain.attributions.explain`: TreeSHAP for tree models, Kernel SHAP for others
with the k-means centroids of the model's training rows (its lineage's dataset version) as the
baseline, computed once per variant. Each answer reports the time it took against the endpoint's
``explain_budget_ms`` (``within_budget``); a request over ``explain_max_rows`` rows is refused.
"""

from __future__ import annotations

import threading
import time
import weakref

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput, ModelloopError
from modelloop.serving.protocols import content
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error, read_body

#: Background rows read from a model's training data for Kernel SHAP's k-means baseline.
BACKGROUND_ROWS = 2000
CENTROIDS = 10


class ExplainNotAllowed(ModelloopError):
    """The variant that would answer is not configured to explain its predictions (403)."""

    status = 403


class Explainers:
    """Per server: which variant may explain, and its attributions for a request's rows (the
    Kernel SHAP background of each model read once)."""

    def __init__(self, plane):
        self.plane = plane
        self._backgrounds: dict[str, object] = {}  # model ref -> its training rows
        self._lock = threading.Lock()

    def check(self, rt, variant, n_rows: int) -> None:
        if not variant.explain:
            raise ExplainNotAllowed(
                f"variant {variant.name!r} of endpoint {rt.name!r} does not explain",
                hint="allow it in the variant's spec: {'model': ..., 'explain': true}")
        limit = int(rt.options.get("explain_max_rows", 100))
        if n_rows > limit:
            raise InvalidInput(f"{n_rows} rows to explain; this endpoint explains at most "
                               f"{limit} a request", hint="send fewer rows, or raise explain_max_rows")  # fmt: skip

    def _background(self, variant):
        with self._lock:
            if variant.model_ref not in self._backgrounds:
                self._backgrounds[variant.model_ref] = _training_rows(self.plane, variant)
            return self._backgrounds[variant.model_ref]

    async def explain(self, rt, variant, payload):
        """(Explanation, milliseconds) for the payload's rows on ``variant``."""
        from modelloop.explain.attributions import explain, split_pipeline

        frame = _frame(variant, variant.prepare(payload))
        _, est = split_pipeline(variant.packaged.model)
        tree = _is_tree(est)

        def work():
            return explain(variant.packaged, frame, rows=None, method="tree" if tree else "kernel",
                           background=None if tree else self._background(variant),
                           nsamples=int(rt.options.get("explain_nsamples", 100)),
                           centroids=CENTROIDS)  # fmt: skip

        started = time.perf_counter()
        result = await run_in_threadpool(work)
        return result, (time.perf_counter() - started) * 1000.0


_BY_PLANE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def explainers(server: ServerContext) -> Explainers:
    """The data plane's one :class:`Explainers` (shared by this route and SageMaker's
    ``EnableExplanations``)."""
    found = _BY_PLANE.get(server.plane)
    if found is None:
        found = _BY_PLANE[server.plane] = Explainers(server.plane)
    return found


class Explain(Protocol):
    name = "explain"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def explain_route(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                rt = plane.runtime(request.path_params["name"])
                h = request.headers
                variant = rt.choose(h.get("x-amzn-sagemaker-target-variant"),
                                    h.get("x-modelloop-routing-key"))  # fmt: skip
                ex = explainers(server)
                ex.check(rt, variant, 0)
                body = await read_body(request, rt.max_payload, rt.timeout)
                payload = content.decode(body, h.get("content-type", ""), max_rows=rt.max_rows)
                ex.check(rt, variant, len(payload.rows))
                result = await plane.infer(rt, payload, target=variant.name,
                                           inference_id=h.get("x-amzn-sagemaker-inference-id"),
                                           t_start=t0)  # fmt: skip
                expl, explain_ms = await ex.explain(rt, variant, payload)
            except Exception as exc:
                return plain_error(exc)
            total_ms = (time.perf_counter() - t0) * 1000.0
            budget = float(rt.options.get("explain_budget_ms", 1000.0))
            return JSONResponse({
                "predictions": result.predictions, "variant": result.variant,
                "model": result.model, "inference_id": result.inference_id,
                "explanations": {"method": f"{expl.method}_shap", "output": expl.output,
                                 "expected_value": expl.expected_value,
                                 "columns": expl.columns,
                                 "attributions": expl.values.tolist()},
                "latency_ms": {"total": round(total_ms, 3), "explain": round(explain_ms, 3),
                               "budget": budget},
                "within_budget": total_ms <= budget, "cost": expl.cost,
            }, headers={"x-Amzn-Invoked-Production-Variant": result.variant})  # fmt: skip

        return [Route("/endpoints/{name}/explain", explain_route, methods=["POST"])]


def sagemaker_explanations(expl) -> dict:
    """SageMaker's online explainability layout: per row, per feature
    ``{"feature_header", "attributions": [{"attribution": [value]}]}``."""
    key = f"{expl.method}_shap"
    return {key: [[{"feature_header": c, "attributions": [{"attribution": [float(v)]}]}
                   for c, v in zip(expl.columns, row, strict=True)] for row in expl.values]}


def enable_explanations(value: str | None) -> bool:
    """SageMaker's ``EnableExplanations`` is a JMESPath expression on the predictions; the
    literal ones are understood: `` `true` `` (every request) and `` `false` ``."""
    if value is None:
        return False
    text = value.strip().strip("`").strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise InvalidInput(f"EnableExplanations {value!r} is not understood",
                       hint="use `true` or `false` (JMESPath conditions are not supported)")


def _is_tree(estimator) -> bool:
    try:
        import shap

        shap.TreeExplainer(estimator)
        return True
    except ImportError:
        raise InvalidInput("explanations need the shap library",
                           hint="pip install 'modelloop[explain]' where the server runs") from None
    except Exception:  # noqa: BLE001 - shap refuses models it cannot walk
        return False


def _frame(variant, X):
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(X, columns=variant.columns)


def _training_rows(plane, variant):
    """The first rows of the dataset version the model was trained on, for Kernel SHAP."""
    lineage = variant.packaged.manifest.lineage or {}
    refs = [i.get("ref") for i in lineage.get("inputs") or [] if i.get("kind") == "dataset"]
    datasets = getattr(plane.endpoints.models, "datasets", None)
    if not refs or datasets is None:
        raise InvalidInput(f"model {variant.model_ref} records no training data for Kernel SHAP's "
                           "baseline", hint="explain tree models, or register models trained "
                                            "by modelloop")  # fmt: skip
    return datasets.to_pandas(refs[0]).head(BACKGROUND_ROWS)
