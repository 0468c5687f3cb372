"""The serving HTTP app: thin protocol adapters over the one data plane.

Routes (see the README's serving section):

- SageMaker runtime: ``POST /endpoints/{name}/invocations``; container contract ``GET /ping`` and
  ``POST /invocations`` (the endpoint given by ``serve --endpoint`` or the only one there is);
- MLflow scoring JSON: ``POST /mlflow/{name}/invocations`` (and ``/invocations`` accepts it too);
- Open Inference Protocol v2: ``/v2/health/live|ready``, ``/v2/models/{name}[/ready]``,
  ``/v2/models/{name}[/versions/{v}]/infer``;
- ``GET /metrics`` (Prometheus text), ``GET /endpoints`` (what this server serves) and
  ``GET /workers`` (its worker processes);
- ``POST /endpoints/{name}/feedback``: ground truth ``{"inference_id", "label"}`` (one, a list,
  or JSON Lines) for model-quality monitoring.

Each adapter turns its request into a :class:`~modelloop.serving.codecs.Payload`, calls
``DataPlane.infer`` and shapes the answer and the errors the way its clients expect them.
"""

from __future__ import annotations

import json
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput, ModelloopError
from modelloop.serving import codecs
from modelloop.serving.dataplane import DataPlane, PayloadTooLarge


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(
            f"request body of {int(length)} bytes is over the {limit} byte limit",
            hint="send fewer rows per request, or raise the endpoint's max_payload_mb option",
        )
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"request body of {len(body)} bytes is over the {limit} byte limit",
                              hint="send fewer rows per request")
    return body


def _sagemaker_error(exc: Exception) -> Response:
    """Errors as the SageMaker runtime shapes them, so botocore raises the named exception."""
    if isinstance(exc, ModelloopError):
        status = exc.status
        message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    else:
        status, message = 500, f"internal error: {type(exc).__name__}: {exc}"
    if status == 424:
        kind = "ModelError"
        body = {"__type": kind, "message": f"Received server error (500) from model with "
                f"message \"{message}\".", "OriginalStatusCode": 500,
                "OriginalMessage": message, "LogStreamArn": ""}
    elif status == 500:
        kind, body = "InternalFailure", {"__type": "InternalFailure", "message": message}
    else:
        kind, body = "ValidationError", {"__type": "ValidationError", "message": message}
    return JSONResponse(body, status_code=status, headers={"x-amzn-ErrorType": kind})


def _plain_error(exc: Exception, style: str = "mlflow") -> Response:
    if isinstance(exc, ModelloopError):
        status, message, hint = exc.status, exc.message, exc.hint
    else:
        status, message, hint = 500, f"internal error: {type(exc).__name__}: {exc}", None
    if style == "oip":
        return JSONResponse({"error": message + (f" ({hint})" if hint else "")}, status)
    code = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST",
            424: "MODEL_ERROR"}.get(status, "INTERNAL_ERROR")
    return JSONResponse({"error_code": code, "message": message, "hint": hint}, status)


def create_app(ws, *, default_endpoint: str | None = None, poll_seconds: float = 0.5,
               board=None, metrics_seconds: float = 10.0) -> Starlette:
    """The app of one server process; ``board`` is the worker board when several run;
    ``metrics_seconds`` how often endpoint metric series are written."""
    plane = DataPlane(ws, poll_seconds=poll_seconds, metrics_seconds=metrics_seconds)

    def single_endpoint() -> str:
        if default_endpoint:
            return default_endpoint
        names = sorted(plane.runtimes)
        if len(names) == 1:
            return names[0]
        raise InvalidInput(
            f"this server hosts {len(names)} endpoints, so /invocations does not know which",
            hint="call /endpoints/NAME/invocations, or start 'modelloop serve --endpoint NAME'",
        )

    async def invoke(request: Request, name: str) -> Response:
        t0 = time.perf_counter()
        try:
            rt = plane.runtime(name)
            body = await _body(request, rt.max_payload)
            payload = codecs.decode(body, request.headers.get("content-type", ""))
            h = request.headers
            attrs = h.get("x-amzn-sagemaker-custom-attributes")
            result = await plane.infer(
                rt, payload, target=h.get("x-amzn-sagemaker-target-variant"),
                routing_key=h.get("x-modelloop-routing-key"),
                inference_id=h.get("x-amzn-sagemaker-inference-id"),
                want_proba="probabilities" in (attrs or ""), t_start=t0)
        except Exception as exc:
            return _sagemaker_error(exc)
        content, ctype = codecs.encode(result.body(), request.headers.get("accept", ""))
        headers = {"x-Amzn-Invoked-Production-Variant": result.variant,
                   "X-Amzn-SageMaker-Inference-Id": result.inference_id}
        if attrs:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attrs
        return Response(content, media_type=ctype, headers=headers)

    async def sagemaker_invocations(request: Request) -> Response:
        return await invoke(request, request.path_params["name"])

    async def container_invocations(request: Request) -> Response:
        try:
            name = single_endpoint()
        except Exception as exc:
            return _sagemaker_error(exc)
        return await invoke(request, name)

    async def ping(request: Request) -> Response:
        return Response(status_code=200 if plane.runtimes else 503)

    async def mlflow_invocations(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            rt = plane.runtime(request.path_params["name"])
            body = await _body(request, rt.max_payload)
            payload = codecs.decode(body, request.headers.get("content-type", ""))
            result = await plane.infer(rt, payload, t_start=t0)
        except Exception as exc:
            return _plain_error(exc)
        return Response(json.dumps({"predictions": result.predictions}),
                        media_type="application/json",
                        headers={"x-Amzn-Invoked-Production-Variant": result.variant})

    # -- Open Inference Protocol v2
    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = bool(plane.runtimes)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    def _oip_variant(rt, version: str | None):
        if version is None:
            return None
        for v in rt.variants.values():
            if v.name == version or v.model_ref.rsplit("@", 1)[1] == version:
                return v.name
        raise InvalidInput(f"endpoint {rt.name!r} serves no version {version!r}",
                           hint="versions: " + ", ".join(
                               v.model_ref.rsplit("@", 1)[1] for v in rt.variants.values()))

    async def model_metadata(request: Request) -> Response:
        try:
            rt = plane.runtime(request.path_params["name"])
        except Exception as exc:
            return _plain_error(exc, "oip")
        v = rt.primaries[0] if rt.primaries else next(iter(rt.variants.values()))
        sig = v.packaged.signature
        return JSONResponse({
            "name": rt.name,
            "versions": sorted({x.model_ref.rsplit("@", 1)[1] for x in rt.variants.values()}),
            "platform": f"modelloop-{v.packaged.flavor}",
            "inputs": [{"name": c.name, "datatype": _OIP_TYPES.get(c.type, "BYTES"),
                        "shape": [-1, 1]} for c in sig.columns],
            "outputs": [{"name": "predict", "datatype": "FP64" if v.packaged.task ==
                         "regression" else "BYTES", "shape": [-1]}],
        })

    async def model_ready(request: Request) -> Response:
        ok = request.path_params["name"] in plane.runtimes
        return JSONResponse({"name": request.path_params["name"], "ready": ok},
                            status_code=200 if ok else 404)

    async def oip_infer(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            rt = plane.runtime(request.path_params["name"])
            body = await _body(request, rt.max_payload)
            doc = codecs._loads(body)
            payload = oip_payload(doc, rt)
            target = _oip_variant(rt, request.path_params.get("version"))
            wanted = [o.get("name") for o in doc.get("outputs") or []]
            result = await plane.infer(rt, payload, target=target,
                                       want_proba="predict_proba" in wanted,
                                       inference_id=doc.get("id"), t_start=t0)
        except Exception as exc:
            return _plain_error(exc, "oip")
        outputs = [_tensor("predict", result.predictions)]
        if result.probabilities is not None:
            outputs.append(_tensor("predict_proba", result.probabilities))
        return JSONResponse({"model_name": rt.name,
                             "model_version": result.model.rsplit("@", 1)[1],
                             "id": result.inference_id, "outputs": outputs},
                            headers={"x-Amzn-Invoked-Production-Variant": result.variant})

    async def metrics(request: Request) -> Response:
        from modelloop.serving.metrics import prometheus_text

        rows = [(ep, var, s.snapshot()) for (ep, var), s in sorted(plane.stats.items())]
        cap = plane.capture.stats()
        text = prometheus_text(rows)
        text += ("# HELP modelloop_capture_records_total Capture records by outcome.\n"
                 "# TYPE modelloop_capture_records_total counter\n")
        for key in ("written", "dropped", "failed"):
            text += f'modelloop_capture_records_total{{outcome="{key}"}} {cap[key]}\n'
        return Response(text, media_type="text/plain; version=0.0.4")

    async def feedback(request: Request) -> Response:
        """Ground truth for earlier predictions, stored as ``modelloop monitor labels`` does
        (through ``ws.monitoring``, the workspace this server already holds)."""
        from starlette.concurrency import run_in_threadpool

        name = request.path_params["name"]
        try:
            plane.runtime(name)  # 404 for an endpoint this server does not know
            body = await _body(request, 64 * 1024 * 1024)
            records = codecs.decode_feedback(body, request.headers.get("content-type", ""))
            q = request.query_params
            out = await run_in_threadpool(
                ws.monitoring.add_label_records, name, records,
                id_column=q.get("id_column", "inference_id"),
                label_column=q.get("label_column", "label"))
        except Exception as exc:
            return _plain_error(exc)
        return JSONResponse(out)

    async def list_endpoints(request: Request) -> Response:
        return JSONResponse({name: {"revision": rt.revision,
                                    "variants": {v.name: {"model": v.model_ref, "role": v.role,
                                                          "weight": v.weight}
                                                 for v in rt.variants.values()}}
                             for name, rt in sorted(plane.runtimes.items())})

    async def workers(request: Request) -> Response:
        from modelloop.serving.workers import single_report

        return JSONResponse(board.report() if board is not None else single_report())

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/workers", workers, methods=["GET"]),
        Route("/invocations", container_invocations, methods=["POST"]),
        Route("/endpoints", list_endpoints, methods=["GET"]),
        Route("/endpoints/{name}/invocations", sagemaker_invocations, methods=["POST"]),
        Route("/endpoints/{name}/feedback", feedback, methods=["POST"]),
        Route("/mlflow/{name}/invocations", mlflow_invocations, methods=["POST"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", oip_infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", oip_infer, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        plane.start()
        try:
            yield
        finally:
            plane.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.plane = plane
    return app


_OIP_TYPES = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32",
              "double": "FP64", "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}


def _tensor(name: str, data: list) -> dict:
    import numpy as np

    arr = np.asarray(data)
    kind = arr.dtype.kind
    dtype = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}.get(kind, "BYTES")
    return {"name": name, "shape": list(arr.shape), "datatype": dtype,
            "data": arr.reshape(-1).tolist()}


def oip_payload(doc: dict, rt) -> codecs.Payload:
    """OIP v2 inputs: one [N, F] tensor in signature order, or one [N] tensor per column."""
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not inputs or not isinstance(inputs, list):
        raise InvalidInput("the infer request has no 'inputs'",
                           hint='{"inputs": [{"name": "input-0", "shape": [1, F], '
                                '"datatype": "FP64", "data": [...]}]}')
    for t in inputs:
        if not isinstance(t, dict) or "data" not in t or "shape" not in t:
            raise InvalidInput("each input tensor needs name, shape, datatype and data")
    if len(inputs) == 1 and len(inputs[0]["shape"]) == 2:
        t = inputs[0]
        n, f = t["shape"]
        data = _flat(t["data"])
        if n * f != len(data):
            raise InvalidInput(f"tensor {t.get('name')!r} has shape {t['shape']} but "
                               f"{len(data)} values", hint="data must hold rows × columns values")
        return codecs.Payload(None, [data[i * f:(i + 1) * f] for i in range(n)])
    cols = [str(t.get("name")) for t in inputs]
    values = [_flat(t["data"]) for t in inputs]
    n = len(values[0])
    if any(len(v) != n for v in values):
        raise InvalidInput("input tensors have different lengths",
                           hint="send one value per row in every column tensor")
    return codecs.Payload(cols, [list(r) for r in zip(*values, strict=True)])


def _flat(data) -> list:
    if data and isinstance(data[0], list):
        out = []
        for row in data:
            out.extend(_flat(row))
        return out
    return list(data)


def run(ws, *, host: str = "127.0.0.1", port: int = 8080, endpoint: str | None = None,
        log_level: str = "warning", min_workers: int = 1, max_workers: int = 1,
        metrics_seconds: float = 10.0, **scaling) -> None:
    """Serve until interrupted (uvicorn with uvloop and httptools, no access log).

    One process by default; with ``max_workers`` > 1, worker processes on one shared socket,
    a fixed number (``min_workers == max_workers``) or autoscaled (see ``serving.workers``).
    """
    import uvicorn

    if max_workers > 1:
        from modelloop.serving.workers import run_workers

        run_workers(ws, host=host, port=port, endpoint=endpoint, log_level=log_level,
                    min_workers=min_workers, max_workers=max_workers,
                    metrics_seconds=metrics_seconds, **scaling)
        return

    app = create_app(ws, default_endpoint=endpoint, metrics_seconds=metrics_seconds)
    config = uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools",
                            access_log=False, log_level=log_level, lifespan="on")
    uvicorn.Server(config).run()
