"""The serving HTTP app: thin protocol adapters over the one data plane.

Routes (see the README's serving section):

- SageMaker runtime: ``POST /endpoints/{name}/invocations``; container contract ``GET /ping`` and
  ``POST /invocations`` (the endpoint given by ``serve --endpoint`` or the only one there is);
- MLflow scoring JSON: ``POST /mlflow/{name}/invocations`` (and ``/invocations`` accepts it too);
- Open Inference Protocol v2: ``GET /v2``, ``/v2/health/live|ready``,
  ``/v2/models/{name}[/versions/{v}][/ready]``, ``/v2/models/{name}[/versions/{v}]/infer`` (JSON
  or the binary tensor data extension, both ways);
- ``GET /metrics`` (Prometheus text), ``GET /endpoints`` (what this server serves) and
  ``GET /workers`` (its worker processes);
- ``POST /endpoints/{name}/feedback``: ground truth ``{"inference_id", "label"}`` (one, a list,
  or JSON Lines) for model-quality monitoring.

Each adapter turns its request into a :class:`~modelloop.serving.codecs.Payload`, calls
``DataPlane.infer`` and shapes the answer and the errors the way its clients expect them. Bodies
are counted as they arrive (413 past ``max_payload_mb``); header limits are in
``serving.connections``.
"""

from __future__ import annotations

import asyncio
import json
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput, ModelloopError
from modelloop.serving import codecs
from modelloop.serving.dataplane import DataPlane, PayloadTooLarge


class BodyTimedOut(ModelloopError):
    status = 408


async def _body(request: Request, limit: int, timeout: float = 60.0) -> bytes:
    """The body, counted as it streams in: a chunked body (no Content-Length) stops at the limit
    instead of being buffered whole first, and a body trickling in slower than ``timeout``
    seconds is a 408 (headers have their own deadline in ``serving.connections``)."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request, limit)
    except TimeoutError:
        raise BodyTimedOut(f"the request body did not arrive within {timeout:g} s",
                           hint="send the whole body at once, or raise the endpoint's "
                                "timeout_seconds option") from None


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise InvalidInput(f"Content-Length {length!r} is not a number of bytes")
    if length and int(length) > limit:
        raise PayloadTooLarge(
            f"request body of {int(length)} bytes is over the {limit} byte limit",
            hint="send fewer rows per request, or raise the endpoint's max_payload_mb option",
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit} byte limit",
                                  hint="send fewer rows per request, or raise the endpoint's "
                                       "max_payload_mb option")
        chunks.append(chunk)
    return b"".join(chunks)


def _custom_attributes(value: str | None) -> dict:
    """SageMaker's CustomAttributes as ``key=value`` pairs separated by ``;`` or ``,`` (a bare
    key counts as ``true``): ``probabilities=true; header=present``."""
    out = {}
    for part in (value or "").replace(",", ";").split(";"):
        key, sep, val = part.partition("=")
        if key.strip():
            out[key.strip().lower()] = val.strip().lower() if sep else "true"
    return out


def _flag(value, what: str) -> bool:
    if value in (True, "true", "1", "yes"):
        return True
    if value in (None, False, "false", "0", "no"):
        return False
    raise InvalidInput(f"{what} must be true or false, got {value!r}")


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
    code = {404: "RESOURCE_DOES_NOT_EXIST", 424: "MODEL_ERROR"}.get(status) or (
        "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
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
            body = await _body(request, rt.max_payload, rt.timeout)
            h = request.headers
            attrs = h.get("x-amzn-sagemaker-custom-attributes")
            options = _custom_attributes(attrs)
            payload = codecs.decode(body, h.get("content-type", ""),
                                    csv_header=options.get("header"), max_rows=rt.max_rows)
            result = await plane.infer(
                rt, payload, target=h.get("x-amzn-sagemaker-target-variant"),
                routing_key=h.get("x-modelloop-routing-key"),
                inference_id=h.get("x-amzn-sagemaker-inference-id"),
                want_proba=_flag(options.get("probabilities"), "custom attribute probabilities"),
                t_start=t0)
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
            body = await _body(request, rt.max_payload, rt.timeout)
            payload = codecs.decode(body, request.headers.get("content-type", ""),
                                    csv_header="present",  # MLflow's CSV has a header line
                                    max_rows=rt.max_rows)
            method = payload.params.get("predict_method", "predict")
            if method not in ("predict", "predict_proba"):
                raise InvalidInput(f"predict_method {method!r} is not available",
                                   hint="use predict or predict_proba")
            result = await plane.infer(rt, payload, want_proba=method == "predict_proba",
                                       t_start=t0)
        except Exception as exc:
            return _plain_error(exc)
        body = {"predictions": result.predictions}
        if method == "predict_proba":  # as MLflow answers predict_method=predict_proba
            body = {"predictions": result.probabilities, "classes": result.classes}
        return Response(json.dumps(body), media_type="application/json",
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

    async def server_metadata(request: Request) -> Response:
        from importlib.metadata import version  # not modelloop.__version__: a floor above

        return JSONResponse({"name": "modelloop", "version": version("modelloop"),
                             "extensions": ["binary_tensor_data"]})

    async def model_metadata(request: Request) -> Response:
        try:
            rt = plane.runtime(request.path_params["name"])
            target = _oip_variant(rt, request.path_params.get("version"))
        except Exception as exc:
            return _plain_error(exc, "oip")
        v = rt.variants[target] if target else (
            rt.primaries[0] if rt.primaries else next(iter(rt.variants.values())))
        sig = v.packaged.signature
        return JSONResponse({
            "name": rt.name,
            "versions": sorted({x.model_ref.rsplit("@", 1)[1] for x in rt.variants.values()}),
            "platform": f"modelloop-{v.packaged.flavor}",
            "inputs": [{"name": c.name, "datatype": _OIP_TYPES.get(c.type, "BYTES"),
                        "shape": [-1, 1]} for c in sig.columns],
            "outputs": v.outputs,
        })

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        ok = name in plane.runtimes
        if ok and request.path_params.get("version") is not None:
            try:
                _oip_variant(plane.runtimes[name], request.path_params["version"])
            except InvalidInput:
                ok = False
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 404)

    async def oip_infer(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            rt = plane.runtime(request.path_params["name"])
            body = await _body(request, rt.max_payload, rt.timeout)
            req = codecs.decode_oip(body, request.headers.get("inference-header-content-length"),
                                    max_rows=rt.max_rows)
            target = _oip_variant(rt, request.path_params.get("version"))
            wanted = req.outputs or ["predict"]
            want_proba = any(codecs.OIP_OUTPUTS[o] == "predict_proba" for o in wanted)
            inference_id = req.id if isinstance(req.id, str) and req.id else None
            result = await plane.infer(rt, req.payload, target=target, want_proba=want_proba,
                                       inference_id=inference_id, t_start=t0)
        except Exception as exc:
            return _plain_error(exc, "oip")
        variant = rt.variants[result.variant]
        outputs = []
        for name in wanted:
            if codecs.OIP_OUTPUTS[name] == "predict":
                values = _labels(result.predictions, variant.label_type)
                outputs.append((name, variant.label_type, [len(result.predictions)], values))
            else:
                probs = result.probabilities
                outputs.append((name, "FP64", [len(probs), len(probs[0]) if probs else 0],
                                probs))
        content, headers = codecs.encode_oip(
            {"model_name": rt.name, "model_version": result.model.rsplit("@", 1)[1],
             "id": result.inference_id}, outputs, req)
        headers["x-Amzn-Invoked-Production-Variant"] = result.variant
        return Response(content, headers=headers)

    async def metrics(request: Request) -> Response:
        from modelloop.telemetry.metrics import prometheus_text

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
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
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


def _labels(predictions: list, datatype: str) -> list:
    """Predictions as values of the announced datatype (labels of any type become text for
    BYTES)."""
    if datatype == "BYTES":
        return [str(p) for p in predictions]
    if datatype == "INT64":
        return [int(p) for p in predictions]
    if datatype == "BOOL":
        return [bool(p) for p in predictions]
    return [float(p) for p in predictions]


def run(ws, *, host: str = "127.0.0.1", port: int = 8080, endpoint: str | None = None,
        log_level: str = "warning", min_workers: int = 1, max_workers: int = 1,
        metrics_seconds: float = 10.0, sock=None, insecure: bool = False, **scaling) -> None:
    """Serve until interrupted (uvicorn with uvloop and httptools, no access log).

    One process by default; with ``max_workers`` > 1, worker processes on one shared socket,
    a fixed number (``min_workers == max_workers``) or autoscaled (see ``serving.workers``).
    ``sock`` is a listening socket from ``serving.workers.bind`` (bound here if not given).
    The options are checked as ``modelloop serve`` checks them (a host other than loopback
    needs ``insecure``).
    """
    import uvicorn

    from modelloop.serving.connections import PROTOCOL
    from modelloop.serving.spec import check_serve
    from modelloop.serving.workers import bind, run_workers

    check_serve(host=host, port=port, insecure=insecure, min_workers=min_workers,
                max_workers=max_workers, metrics_seconds=metrics_seconds,
                **{k: scaling[k] for k in ("target_inflight", "scale_out_cooldown",
                                           "scale_in_cooldown") if k in scaling})
    sock = sock or bind(host, port)
    if max_workers > 1:
        run_workers(ws, host=host, port=port, endpoint=endpoint, log_level=log_level,
                    min_workers=min_workers, max_workers=max_workers,
                    metrics_seconds=metrics_seconds, sock=sock, **scaling)
        return

    app = create_app(ws, default_endpoint=endpoint, metrics_seconds=metrics_seconds)
    config = uvicorn.Config(app, host=host, port=port, loop="uvloop", http=PROTOCOL,
                            access_log=False, log_level=log_level, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
