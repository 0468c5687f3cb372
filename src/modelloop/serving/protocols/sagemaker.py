"""The SageMaker runtime protocol: ``POST /endpoints/{name}/invocations``, and the container
contract ``GET /ping`` and ``POST /invocations`` (the endpoint given by ``serve --endpoint`` or
the only one there is; it takes MLflow's JSON too).

Bodies are JSON, CSV (headerless unless ``header=present``), JSON Lines or ``.npy``; answers come
in the ``Accept`` type. ``CustomAttributes: probabilities=true`` asks for class probabilities;
``X-Amzn-SageMaker-Target-Variant`` picks a variant and ``X-Modelloop-Routing-Key`` keeps a key
on one. ``X-Amzn-SageMaker-Enable-Explanations: `true``` (boto3's ``EnableExplanations``) adds
SHAP attributions in SageMaker's online-explainability layout, from variants allowed to explain. Errors are shaped as the SageMaker runtime shapes them, so botocore raises the named
exception.
"""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput
from modelloop.serving.protocols import content
from modelloop.serving.protocols.base import Protocol, ServerContext, error_parts, read_body
from modelloop.serving.protocols.explain import (
    enable_explanations,
    explainers,
    sagemaker_explanations,
)


class SageMaker(Protocol):
    name = "sagemaker"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        def single_endpoint() -> str:
            if server.default_endpoint:
                return server.default_endpoint
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
                body = await read_body(request, rt.max_payload, rt.timeout)
                h = request.headers
                attrs = h.get("x-amzn-sagemaker-custom-attributes")
                options = custom_attributes(attrs)
                payload = content.decode(body, h.get("content-type", ""),
                                         csv_header=options.get("header"), max_rows=rt.max_rows)
                target = h.get("x-amzn-sagemaker-target-variant")
                explaining = enable_explanations(h.get("x-amzn-sagemaker-enable-explanations"))
                if explaining:  # the variant that answers must be one that explains
                    variant = rt.choose(target, h.get("x-modelloop-routing-key"))
                    explainers(server).check(rt, variant, len(payload.rows))
                    target = variant.name
                result = await plane.infer(
                    rt, payload, target=target,
                    routing_key=h.get("x-modelloop-routing-key"),
                    inference_id=h.get("x-amzn-sagemaker-inference-id"),
                    want_proba=_flag(options.get("probabilities"),
                                     "custom attribute probabilities"),
                    t_start=t0)
                if explaining:
                    expl, _ = await explainers(server).explain(rt, variant, payload)
            except Exception as exc:
                return sagemaker_error(exc)
            body, ctype = encode(result.body(), request.headers.get("accept", ""))
            if explaining:  # SageMaker's layout: the predictions as they would be, then the SHAP
                body, ctype = json.dumps({
                    "version": "1.0",
                    "predictions": {"content_type": ctype, "data": body.decode()},
                    "explanations": sagemaker_explanations(expl)}).encode(), "application/json"
            headers = {"x-Amzn-Invoked-Production-Variant": result.variant,
                       "X-Amzn-SageMaker-Inference-Id": result.inference_id}
            if attrs:
                headers["X-Amzn-SageMaker-Custom-Attributes"] = attrs
            return Response(body, media_type=ctype, headers=headers)

        async def invocations(request: Request) -> Response:
            return await invoke(request, request.path_params["name"])

        async def container_invocations(request: Request) -> Response:
            try:
                name = single_endpoint()
            except Exception as exc:
                return sagemaker_error(exc)
            return await invoke(request, name)

        async def ping(request: Request) -> Response:
            return Response(status_code=200 if plane.runtimes else 503)

        return [
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", container_invocations, methods=["POST"]),
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
        ]


def custom_attributes(value: str | None) -> dict:
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


def sagemaker_error(exc: Exception) -> Response:
    """Errors as the SageMaker runtime shapes them, so botocore raises the named exception."""
    status, message, hint = error_parts(exc)
    if hint:
        message += f" ({hint})"
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


def encode(result: dict, accept: str) -> tuple[bytes, str]:
    """Body and content type for ``{"predictions": [...], ...}`` in the ``Accept`` type; asked-for
    probabilities follow each prediction (CSV: ``label,p1,p2``; JSON Lines: a
    ``probabilities`` key), in the order of ``classes``."""
    atype = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    preds, probs = result["predictions"], result.get("probabilities")
    if atype in ("text/csv", "text/plain"):
        cells = [_csv_cell(p) for p in preds] if probs is None else \
            [_csv_cell([p, *q]) for p, q in zip(preds, probs, strict=True)]
        return ("\n".join(cells) + "\n").encode(), "text/csv"
    if atype in ("application/jsonlines", "application/x-jsonlines"):
        lines = [json.dumps({"prediction": p}) for p in preds] if probs is None else \
            [json.dumps({"prediction": p, "probabilities": q})
             for p, q in zip(preds, probs, strict=True)]
        return ("\n".join(lines) + "\n").encode(), "application/jsonlines"
    return json.dumps(result).encode(), "application/json"


def _csv_cell(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)

