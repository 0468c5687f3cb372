"""Endpoint control: values that would break serving are refused where they are given, an alias
ref follows its alias, unapproved versions need --force, and ``serve`` binds safely."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest
from tests.serving.conftest import Server, free_port, register_model, row

from modelloop.errors import InvalidInput, NotApproved

NAN, INF = float("nan"), float("inf")


def _env(ws) -> dict:
    return {"MODELLOOP_HOME": str(ws.root)}


def _one_line_error(r) -> str:
    assert r.code != 0, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err and "internal error" not in r.err, r
    return lines[0]


# -- numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, field", [
    ({"options": {"max_payload_mb": NAN}}, "max_payload_mb"),
    ({"options": {"timeout_seconds": INF}}, "timeout_seconds"),
    ({"options": {"max_batch_rows": 0}}, "max_batch_rows"),
    ({"options": {"max_wait_ms": -1}}, "max_wait_ms"),
    ({"capture": {"enabled": True, "sampling": NAN}}, "sampling"),
    ({"variants": [{"name": "a", "model": "clf@1", "weight": NAN}]}, "weight"),
    ({"variants": [{"name": "a", "model": "clf@1", "weight": INF}]}, "weight"),
    ({"variants": [{"name": "a", "model": "clf@1"},
                   {"name": "s", "model": "clf@1", "role": "shadow", "sample": NAN}]}, "sample"),
])
def test_sdk_refuses_values_that_break_serving(local_workspace, kwargs, field):
    ws = local_workspace
    register_model(ws)
    model = None if "variants" in kwargs else "clf@1"
    with pytest.raises(InvalidInput, match=field):
        ws.endpoints.create("ep", model, **kwargs)
    assert ws.endpoints.list() == []  # nothing half-created


@pytest.mark.parametrize("kwargs, field", [
    ({"bake_seconds": NAN}, "bake_seconds"),
    ({"canary_percent": INF}, "canary_percent"),
    ({"step_percent": 0.0001, "strategy": "linear"}, "step_percent"),
    ({"max_error_rate": NAN}, "max_error_rate"),
    ({"max_p99_ms": INF}, "max_p99_ms"),
    ({"min_requests": -1}, "min_requests"),
    ({"max_wait": INF}, "max_wait"),
    ({"timeout": NAN}, "timeout"),
    ({"on_low_traffic": "hope"}, "on_low_traffic"),
])
def test_deploy_refuses_values_that_break_rollouts(local_workspace, kwargs, field):
    ws = local_workspace
    a, b = register_model(ws, seed=1), register_model(ws, seed=2)
    ws.endpoints.create("ep", a)
    with pytest.raises(InvalidInput, match=field):
        ws.endpoints.deploy("ep", b, **{"strategy": "canary", **kwargs})
    assert ws.endpoints.rollouts("ep") == []


def test_weights_and_options_are_checked_on_update_too(local_workspace, cli):
    ws = local_workspace
    ref = register_model(ws)
    ws.endpoints.create("ep", variants=[{"name": "a", "model": ref}])
    revision = ws.endpoints.get("ep")["revision"]
    for weights in ({"a": NAN}, {"a": INF}, {"a": -1}):
        with pytest.raises(InvalidInput, match="weight"):
            ws.endpoints.update("ep", weights=weights)
    with pytest.raises(InvalidInput, match="max_payload_mb"):
        ws.endpoints.update("ep", options={"max_payload_mb": NAN})
    assert ws.endpoints.get("ep")["revision"] == revision  # nothing stored
    # the CLI says the same in one line (values it parses itself reach the SDK's check)
    line = _one_line_error(cli("endpoint", "update", "ep", "--weight", "a=nan", env=_env(ws),
                               check=False))
    assert "weight" in line
    line = _one_line_error(cli("endpoint", "create", "ep2", "--variant", f"b={ref}:inf",
                               env=_env(ws), check=False))
    assert "weight" in line



def test_max_request_rows_is_an_endpoint_option_of_the_cli(local_workspace, cli):
    """`--max-request-rows` reaches the endpoint's options and is range-checked like the rest."""
    ws = local_workspace
    ref = register_model(ws)
    cli("endpoint", "create", "ep", "--model", ref, "--max-request-rows", "7", env=_env(ws))
    assert ws.endpoints.get("ep")["spec"]["options"]["max_request_rows"] == 7
    cli("endpoint", "update", "ep", "--max-request-rows", "9", env=_env(ws))
    assert ws.endpoints.get("ep")["spec"]["options"]["max_request_rows"] == 9
    line = _one_line_error(cli("endpoint", "update", "ep", "--max-request-rows", "0",
                               env=_env(ws), check=False))
    assert "max_request_rows" in line

def test_a_stored_broken_spec_does_not_break_the_other_endpoints(local_workspace, serve):
    """A record written before these checks (a NaN weight) is not loaded, and GET /endpoints
    and the other endpoints keep answering."""
    ws = local_workspace
    ref = register_model(ws)
    ws.endpoints.create("good", ref)
    ws.endpoints.create("old", ref)
    spec = ws.endpoints.get("old")["spec"]
    spec["variants"][0]["weight"] = INF
    ws.store.update_endpoint("old", spec)  # as an older modelloop could store it
    s = serve(ws)
    s.wait_for("good")
    listed = httpx.get(s.url + "/endpoints", timeout=10)
    assert listed.status_code == 200 and "good" in listed.json()
    assert httpx.post(s.url + "/endpoints/good/invocations", json=row(1),
                      timeout=10).status_code == 200


# -- alias refs -----------------------------------------------------------------------------------
def test_create_with_an_alias_follows_the_alias(local_workspace, cli):
    ws = local_workspace
    v1, v2 = register_model(ws, seed=1), register_model(ws, seed=2)
    ws.models.set_alias("clf", "champion", v1)
    r = cli("endpoint", "create", "ep", "--model", "clf@champion", env=_env(ws))
    assert "following clf@champion" in " ".join(r.out.split()), r
    spec = ws.endpoints.get("ep")["spec"]
    assert spec["follow"] == "clf@champion"
    # named after the version it serves, not the alias it was given by
    assert [(v["name"], v["model"]) for v in spec["variants"]] == [("clf-v1", v1)]
    ws.models.set_alias("clf", "champion", v2)
    ws.endpoints.advance(owner="test")  # what a server does twice a second
    assert [v["model"] for v in ws.endpoints.get("ep")["spec"]["variants"]] == [v2]
    # a version number stays pinned, and says so
    r = cli("endpoint", "create", "pinned", "--model", v1, env=_env(ws))
    assert "(pinned)" in r.out and ws.endpoints.get("pinned")["spec"]["follow"] is None


# -- approval -------------------------------------------------------------------------------------
def test_unapproved_versions_are_refused_unless_forced(local_workspace, cli):
    ws = local_workspace
    good = register_model(ws, seed=1)
    pending = register_model(ws, seed=2, approve=False)
    rejected = register_model(ws, seed=3, approve=False)
    ws.models.reject(rejected, reason="worse")
    for ref in (pending, rejected):
        with pytest.raises(NotApproved, match="not approved"):
            ws.endpoints.create("ep", ref)
    assert ws.endpoints.list() == []
    ws.endpoints.create("ep", good)
    with pytest.raises(NotApproved):
        ws.endpoints.deploy("ep", pending, strategy="all-at-once")
    with pytest.raises(NotApproved):
        ws.endpoints.update("ep", variants=[{"name": "a", "model": good},
                                            {"name": "b", "model": pending, "role": "shadow"}])
    assert [v["model"] for v in ws.endpoints.get("ep")["spec"]["variants"]] == [good]
    line = _one_line_error(cli("endpoint", "deploy", "ep2", "--model", pending, env=_env(ws),
                               check=False))
    assert "not approved" in line and "--force" in line
    # forced: done, with a warning, and the reason kept in the endpoint's record and history
    r = cli("endpoint", "deploy", "ep", "--model", pending, "--force", "--reason",
            "hotfix for ticket 7", env=_env(ws))
    assert "warning:" in r.err and "pending" in r.err
    spec = ws.endpoints.get("ep")["spec"]
    assert [v["model"] for v in spec["variants"]] == [pending]
    assert spec["approval_overrides"][0]["model"] == pending
    assert spec["approval_overrides"][0]["reason"] == "hotfix for ticket 7"
    assert spec["approval_overrides"][0]["status"] == "pending"
    with pytest.warns(UserWarning, match="rejected"):
        ws.endpoints.create("ep3", rejected, force=True, reason="compare offline")
    # weights of versions already served change without a new approval
    ws.endpoints.update("ep", weights={spec["variants"][0]["name"]: 50})


# -- serve ----------------------------------------------------------------------------------------
def _serve_cmd(ws, *args) -> list[str]:
    return [sys.executable, "-m", "modelloop", "-w", str(ws.root), "serve", *args]


def test_serve_refuses_a_public_address_without_insecure(local_workspace, serve):
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws))
    port = free_port()
    r = subprocess.run(_serve_cmd(ws, "--host", "0.0.0.0", "--port", str(port)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--insecure" in lines[0] and "serving on" not in r.stderr, r.stderr
    s = serve(ws, "--host", "0.0.0.0", "--insecure")  # loopback reaches 0.0.0.0 too
    s.wait_for("ep")
    assert "warning: serving on 0.0.0.0 without authentication" in s.log.read_text()


def test_serve_on_a_busy_port_fails_in_one_line_without_announcing(local_workspace):
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for extra in ([], ["--workers", "2"]):
            r = subprocess.run(_serve_cmd(ws, "--port", str(port), *extra),
                               capture_output=True, text=True, timeout=60)
            assert r.returncode != 0
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1, r.stderr
            assert "serving on" not in r.stderr and str(port) in lines[0], r.stderr


def test_serve_announces_only_once_listening(local_workspace, tmp_path):
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws))
    server = Server(ws.root)  # waits until it answers
    try:
        text = server.log.read_text()
        assert text.count("serving on") == 1 and f":{server.port}" in text
    finally:
        server.stop()


def test_following_an_alias_moved_to_an_unapproved_version_is_refused_visibly(local_workspace):
    ws = local_workspace
    v1, v2 = register_model(ws, seed=1), register_model(ws, seed=2, approve=False)
    ws.models.set_alias("clf", "champion", v1)
    ws.endpoints.create("ep", "clf@champion")
    ws.models.set_alias("clf", "champion", v2, force=True, reason="try it")
    for _ in range(2):  # refused once, recorded once
        ws.endpoints.advance(owner="test")
    assert [v["model"] for v in ws.endpoints.get("ep")["spec"]["variants"]] == [v1]
    (refused,) = [r for r in ws.endpoints.rollouts("ep") if r["model"] == v2]
    assert refused["status"] == "failed" and "not approved" in refused["reason"]
