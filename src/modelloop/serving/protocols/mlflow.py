"""MLflow's scoring protocol: ``POST /mlflow/{name}/invocations`` with MLflow's JSON
(``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``) or CSV with a header line;
``"params": {"predict_method": "predict_proba"}`` answers class probabilities as MLflow does.
Errors are modelloop's JSON error body (``error_code``, ``message``, ``hint``).
"""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelloop.errors import InvalidInput
from modelloop.serving.protocols import content
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error, read_body


class MLflow(Protocol):
    name = "mlflow"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def invocations(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                rt = plane.runtime(request.path_params["name"])
                body = await read_body(request, rt.max_payload, rt.timeout)
                payload = content.decode(body, request.headers.get("content-type", ""),
                                         csv_header="present",  # MLflow's CSV has a header line
                                         max_rows=rt.max_rows)
                method = payload.params.get("predict_method", "predict")
                if method not in ("predict", "predict_proba"):
                    raise InvalidInput(f"predict_method {method!r} is not available",
                                       hint="use predict or predict_proba")
                result = await plane.infer(rt, payload, want_proba=method == "predict_proba",
                                           t_start=t0)
            except Exception as exc:
                return plain_error(exc)
            answer = {"predictions": result.predictions}
            if method == "predict_proba":  # as MLflow answers predict_method=predict_proba
                answer = {"predictions": result.probabilities, "classes": result.classes}
            return Response(json.dumps(answer), media_type="application/json",
                            headers={"x-Amzn-Invoked-Production-Variant": result.variant})

        return [Route("/mlflow/{name}/invocations", invocations, methods=["POST"])]
