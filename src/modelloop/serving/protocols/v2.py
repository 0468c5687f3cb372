"""The Open Inference Protocol v2 (KServe, Triton and MLServer clients): ``GET /v2`` (server
metadata), ``/v2/health/live|ready``, ``/v2/models/{name}[/versions/{v}][/ready]`` (model
metadata and readiness), ``/v2/models/{name}[/versions/{v}]/infer`` in JSON or with the binary
tensor data extension, both ways. A version is a variant's name or its model version.
"""

from __future__ import annotations

import json
import math
import struct
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput
from modelloop.serving.dataplane.payload import MAX_REQUEST_ROWS, Payload, RowLimit
from modelloop.serving.protocols.base import Protocol, ServerContext, error_parts, read_body
from modelloop.serving.protocols.content import kind_of, loads_json


class V2(Protocol):
    name = "v2"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def live(request: Request) -> Response:
            return JSONResponse({"live": True})

        async def ready(request: Request) -> Response:
            ok = bool(plane.runtimes)
            return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

        async def server_metadata(request: Request) -> Response:
            from importlib.metadata import version  # not modelloop.__version__: a floor above

            return JSONResponse({"name": "modelloop", "version": version("modelloop"),
                                 "extensions": ["binary_tensor_data"]})

        async def model_metadata(request: Request) -> Response:
            try:
                rt = plane.runtime(request.path_params["name"])
                target = _variant(rt, request.path_params.get("version"))
            except Exception as exc:
                return v2_error(exc)
            v = rt.variants[target] if target else (
                rt.primaries[0] if rt.primaries else next(iter(rt.variants.values())))
            sig = v.packaged.signature
            return JSONResponse({
                "name": rt.name,
                "versions": sorted({x.model_ref.rsplit("@", 1)[1]
                                    for x in rt.variants.values()}),
                "platform": f"modelloop-{v.packaged.flavor}",
                "inputs": [{"name": c.name, "datatype": _INPUT_TYPES.get(c.type, "BYTES"),
                            "shape": [-1, 1]} for c in sig.columns],
                "outputs": v.outputs,
            })

        async def model_ready(request: Request) -> Response:
            name = request.path_params["name"]
            ok = name in plane.runtimes
            if ok and request.path_params.get("version") is not None:
                try:
                    _variant(plane.runtimes[name], request.path_params["version"])
                except InvalidInput:
                    ok = False
            return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 404)

        async def infer(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                rt = plane.runtime(request.path_params["name"])
                body = await read_body(request, rt.max_payload, rt.timeout)
                req = decode_oip(body, request.headers.get("inference-header-content-length"),
                                 max_rows=rt.max_rows)
                target = _variant(rt, request.path_params.get("version"))
                wanted = req.outputs or ["predict"]
                want_proba = any(OIP_OUTPUTS[o] == "predict_proba" for o in wanted)
                inference_id = req.id if isinstance(req.id, str) and req.id else None
                result = await plane.infer(rt, req.payload, target=target,
                                           want_proba=want_proba, inference_id=inference_id,
                                           t_start=t0)
            except Exception as exc:
                return v2_error(exc)
            variant = rt.variants[result.variant]
            outputs = []
            for name in wanted:
                if OIP_OUTPUTS[name] == "predict":
                    values = _labels(result.predictions, variant.label_type)
                    outputs.append((name, variant.label_type, [len(result.predictions)], values))
                else:
                    probs = result.probabilities
                    outputs.append((name, "FP64", [len(probs), len(probs[0]) if probs else 0],
                                    probs))
            body, headers = encode_oip(
                {"model_name": rt.name, "model_version": result.model.rsplit("@", 1)[1],
                 "id": result.inference_id}, outputs, req)
            headers["x-Amzn-Invoked-Production-Variant"] = result.variant
            return Response(body, headers=headers)

        return [
            Route("/v2", server_metadata, methods=["GET"]),
            Route("/v2/health/live", live, methods=["GET"]),
            Route("/v2/health/ready", ready, methods=["GET"]),
            Route("/v2/models/{name}", model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        ]


def v2_error(exc: Exception) -> Response:
    """The protocol's error body: ``{"error": "message (hint)"}``."""
    status, message, hint = error_parts(exc)
    return JSONResponse({"error": message + (f" ({hint})" if hint else "")}, status)


def _variant(rt, version: str | None):
    """The variant a ``/versions/{version}`` path names (None: let the data plane route)."""
    if version is None:
        return None
    for v in rt.variants.values():
        if v.name == version or v.model_ref.rsplit("@", 1)[1] == version:
            return v.name
    raise InvalidInput(f"endpoint {rt.name!r} serves no version {version!r}",
                       hint="versions: " + ", ".join(
                           v.model_ref.rsplit("@", 1)[1] for v in rt.variants.values()))


#: v2 datatypes of signature column types, as the model metadata announces the inputs.
_INPUT_TYPES = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32",
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


# -- the codec ------------------------------------------------------------------------------------
#: OIP datatypes and their little-endian numpy types in the binary tensor data extension.
OIP_DTYPES = {"BOOL": "|b1", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
              "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
              "FP32": "<f4", "FP64": "<f8", "BYTES": None}


class OipRequest:
    """A decoded ``/v2/models/NAME/infer`` request: the payload, the outputs asked for (None:
    the default) and which of them to send as binary tensor data."""

    __slots__ = ("payload", "id", "outputs", "binary", "binary_default")

    def __init__(self, payload, id, outputs, binary, binary_default):
        self.payload = payload
        self.id = id
        self.outputs = outputs
        self.binary = binary
        self.binary_default = binary_default

    def wants_binary(self, name: str) -> bool:
        return self.binary.get(name, self.binary_default)


def decode_oip(body: bytes, header_length: str | None, *,
               max_rows: int = MAX_REQUEST_ROWS) -> OipRequest:
    """An infer request, JSON or with the binary tensor data extension: a JSON header of
    ``Inference-Header-Content-Length`` bytes, then each input with a ``binary_data_size``
    parameter as raw little-endian values (BYTES: 4-byte length, then the bytes) in order.

    Shapes are checked (whole non-negative numbers, rows within ``max_rows``) and matched with
    the values sent before any row is built. Hand-written: the v2 codecs that exist (tritonclient,
    MLServer) are a client and a whole server, not a decoder to embed."""
    import numpy as np

    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            n = -1
        if not 0 <= n <= len(body):
            raise InvalidInput(f"Inference-Header-Content-Length {header_length!r} is not a "
                               f"length within the {len(body)}-byte body")
        body, binary = body[:n], body[n:]
    doc = loads_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput("the infer request must be a JSON object",
                           hint='{"inputs": [{"name": ..., "shape": ..., "datatype": ..., '
                                '"data": [...]}]}')
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("the infer request has no 'inputs'",
                           hint='{"inputs": [{"name": "input-0", "shape": [1, F], '
                                '"datatype": "FP64", "data": [...]}]}')
    tensors, offset = [], 0
    for i, t in enumerate(inputs):
        if not isinstance(t, dict):
            raise InvalidInput(f"input {i} is {kind_of(t)}, not a tensor object",
                               hint="each input needs name, shape, datatype and data")
        name = t.get("name")
        label = f"input {name!r}" if isinstance(name, str) else f"input {i}"
        if not isinstance(name, str):
            raise InvalidInput(f"{label} needs a 'name' (a string)")
        shape = _shape(t.get("shape"), label, max_rows)
        datatype = t.get("datatype")
        if datatype not in OIP_DTYPES:
            raise InvalidInput(f"{label} has datatype {datatype!r}",
                               hint=f"use one of {', '.join(OIP_DTYPES)}")
        params = _params(t, label)
        count = math.prod(shape)
        size = params.get("binary_data_size")
        if size is not None:
            if not _whole(size):
                raise InvalidInput(f"{label}: binary_data_size must be a whole number of bytes")
            if offset + size > len(binary):
                raise InvalidInput(f"{label}: binary_data_size {size} runs past the end of the "
                                   f"body ({len(binary) - offset} bytes left)")
            values = _binary_values(binary[offset:offset + size], datatype, count, label)
            offset += size
        else:
            if "data" not in t:
                raise InvalidInput(f"{label} has no 'data'",
                                   hint="send the values in 'data', or as binary tensor data")
            values = _json_values(t["data"], len(shape), count, label)
        tensors.append((name, shape, values))
    if offset != len(binary):
        raise InvalidInput(f"the body has {len(binary) - offset} bytes of binary data that no "
                           "input's binary_data_size accounts for")
    return OipRequest(_oip_payload(tensors, np), doc.get("id"), *_outputs(doc))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _params(obj: dict, label: str) -> dict:
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{label}: 'parameters' must be an object")
    return params


def _shape(shape, label: str, max_rows: int) -> list[int]:
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 \
            or not all(_whole(d) for d in shape):
        raise InvalidInput(f"{label} has shape {shape!r}",
                           hint="a shape is [rows] or [rows, columns] of whole numbers ≥ 0")
    if shape[0] > max_rows:
        raise RowLimit(shape[0], max_rows)
    if shape[0] == 0 or (len(shape) == 2 and shape[1] == 0):
        raise InvalidInput(f"{label} has shape {shape}, which holds no values",
                           hint="send at least one row of values")
    return shape


def _json_values(data, ndim: int, count: int, label: str) -> list:
    """The values of ``data``, flat or nested as the shape (row-major), as one flat list."""
    if not isinstance(data, list):
        raise InvalidInput(f"{label}: 'data' must be a list of values, got {kind_of(data)}")
    flat = data
    for _ in range(ndim - 1):  # nested as [[row], [row]]: one level per extra dimension
        if not flat or not isinstance(flat[0], list):
            break
        if not all(isinstance(x, list) for x in flat):
            raise InvalidInput(f"{label}: 'data' mixes lists and values")
        flat = [v for row in flat for v in row]
    if any(isinstance(v, list | dict) for v in flat):
        raise InvalidInput(f"{label}: 'data' is nested deeper than its shape",
                           hint="send the values flat, in row-major order")
    if len(flat) != count:
        raise InvalidInput(f"{label} has shape with {count} values but 'data' holds {len(flat)}",
                           hint="data must hold rows × columns values")
    return flat


def _binary_values(raw: bytes, datatype: str, count: int, label: str):
    import numpy as np

    if datatype != "BYTES":
        dtype = np.dtype(OIP_DTYPES[datatype])
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(f"{label}: {len(raw)} bytes of binary data are not {count} "
                               f"{datatype} values ({count * dtype.itemsize} bytes)")
        return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InvalidInput(f"{label}: BYTES data ends inside a length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise InvalidInput(f"{label}: a BYTES element of {n} bytes runs past its data")
        try:
            out.append(raw[pos:pos + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"{label}: BYTES element {len(out)} is not UTF-8 text") from None
        pos += n
    if len(out) != count:
        raise InvalidInput(f"{label} has shape with {count} values but its BYTES data holds "
                           f"{len(out)}")
    return out


def _oip_payload(tensors: list, np) -> Payload:
    """One [N, F] tensor in signature order, or one [N] (or [N, 1]) tensor per column."""
    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        _, (n, f), values = tensors[0]
        if isinstance(values, np.ndarray):
            return Payload(None, values.reshape(n, f))
        return Payload(None, [values[i * f:(i + 1) * f] for i in range(n)])
    n = tensors[0][1][0]
    for name, shape, _ in tensors:
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInput(f"input {name!r} has shape {shape}; send one [N, F] tensor or "
                               "one [N] tensor per column")
        if shape[0] != n:
            raise InvalidInput(f"input {name!r} has {shape[0]} rows but input "
                               f"{tensors[0][0]!r} has {n}",
                               hint="send one value per row in every column tensor")
    cols = [name for name, _, _ in tensors]
    values = [v.tolist() if isinstance(v, np.ndarray) else v for _, _, v in tensors]
    return Payload(cols, [list(r) for r in zip(*values, strict=True)])


#: Output names a v2 client may ask for: labels, and class probabilities.
OIP_OUTPUTS = {"predict": "predict", "predict_proba": "predict_proba",
               "probabilities": "predict_proba"}


def _outputs(doc: dict) -> tuple[list | None, dict, bool]:
    params = _params(doc, "the request")
    default = params.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise InvalidInput("parameter binary_data_output must be true or false")
    wanted = doc.get("outputs")
    if wanted is None:
        return None, {}, default
    if not isinstance(wanted, list):
        raise InvalidInput("'outputs' must be a list of objects",
                           hint='e.g. "outputs": [{"name": "predict"}]')
    names, binary = [], {}
    for o in wanted:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise InvalidInput(f"each requested output must be an object with a name, got "
                               f"{json.dumps(o)[:40]}",
                               hint='e.g. "outputs": [{"name": "predict"}]')
        if o["name"] not in OIP_OUTPUTS:
            raise InvalidInput(f"there is no output named {o['name']!r}",
                               hint="outputs: predict (labels or values), predict_proba "
                                    "(or probabilities)")
        flag = _params(o, f"output {o['name']!r}").get("binary_data", default)
        if not isinstance(flag, bool):
            raise InvalidInput(f"output {o['name']!r}: binary_data must be true or false")
        names.append(o["name"])
        binary[o["name"]] = flag
    return names, binary, default


def encode_oip(doc: dict, outputs: list[tuple[str, str, list, object]],
               request: OipRequest) -> tuple[bytes, dict]:
    """The response body and headers; ``outputs`` are (name, datatype, shape, values). Outputs
    the request asked for in binary go after the JSON header, which then says its length."""
    import numpy as np

    tensors, chunks = [], []
    for name, datatype, shape, values in outputs:
        tensor = {"name": name, "datatype": datatype, "shape": shape}
        if request.wants_binary(name):
            raw = _to_binary(values, datatype, np)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = np.asarray(values).reshape(-1).tolist() if datatype != "BYTES" \
                else [str(v) for v in np.asarray(values, dtype=object).reshape(-1)]
        tensors.append(tensor)
    head = json.dumps({**doc, "outputs": tensors}).encode()
    if not chunks:
        return head, {"content-type": "application/json"}
    return head + b"".join(chunks), {"content-type": "application/octet-stream",
                                     "inference-header-content-length": str(len(head))}


def _to_binary(values, datatype: str, np) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in np.asarray(values, dtype=object).reshape(-1):
            b = str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=OIP_DTYPES[datatype]).tobytes()
