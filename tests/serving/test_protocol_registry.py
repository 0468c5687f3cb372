"""A serving protocol is one class and one registration: the app serves it with no other edit."""

from __future__ import annotations

import warnings

import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route

with warnings.catch_warnings():  # starlette asks for httpx2, which is not needed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.serving.conftest import FEATURES, register_model, row

from modelloop.serving.dataplane.payload import Payload
from modelloop.serving.protocols import Protocol, register_protocol
from modelloop.serving.protocols.base import PROTOCOLS


class QueryString(Protocol):
    """A toy protocol: ``GET /toy/NAME?f0=..&f1=..`` predicts one row given as query
    parameters."""

    name = "toy-query-string"

    def routes(self, server):
        async def predict(request):
            rt = server.plane.runtime(request.path_params["name"])
            q = request.query_params
            payload = Payload(list(q), [[float(v) for v in q.values()]])
            result = await server.plane.infer(rt, payload)
            return JSONResponse({"label": result.predictions[0], "variant": result.variant})

        return [Route("/toy/{name}", predict, methods=["GET"])]


@pytest.fixture
def query_string():
    register_protocol(QueryString())
    yield
    PROTOCOLS.pop(QueryString.name)


def test_a_registered_protocol_is_served_on_the_data_plane(query_string, tmp_path):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path / "ws")
    ref = register_model(ws)
    ws.endpoints.create("toy", ref)
    values = dict(zip(FEATURES, row(1)[0], strict=True))
    with TestClient(ws.endpoints.server_app()) as client:
        answer = client.get("/toy/toy", params=values)
        assert answer.status_code == 200, answer.text
        assert answer.json()["label"] in (0, 1) and answer.json()["variant"] == "clf-v1"
        # the same row through a built-in protocol gets the same answer
        sagemaker = client.post("/endpoints/toy/invocations", json=[row(1)[0]])
        assert sagemaker.json()["predictions"] == [answer.json()["label"]]
        # counted by the one data plane, as every protocol's requests are
        text = client.get("/metrics").text
        assert 'endpoint="toy"' in text


def test_an_unregistered_protocol_is_not_served(tmp_path):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path / "ws")
    ws.endpoints.create("toy", register_model(ws))
    with TestClient(ws.endpoints.server_app()) as client:
        assert client.get("/toy/toy", params={"f0": 1}).status_code == 404


def test_a_protocol_needs_a_name():
    with pytest.raises(ValueError):
        register_protocol(Protocol())
