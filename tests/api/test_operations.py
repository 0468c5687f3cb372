"""The operations table names real façade methods, and every route's parameters can travel."""

from __future__ import annotations

import inspect

from modelloop.remote import operations, signatures
from modelloop.workspace import Workspace


def test_every_row_is_a_facade_method_with_its_path_parameters():
    assert len({op.name for op in operations.OPERATIONS}) == len(operations.OPERATIONS)
    assert len({(op.http, op.path) for op in operations.OPERATIONS}) == len(operations.OPERATIONS)
    for op in operations.OPERATIONS:
        assert op.role in operations.ROLES, op
        # a nested service (monitoring.baselines) is an attribute of its parent's instances
        assert op.service == "workspace" or hasattr(Workspace, op.service.split(".")[0]), op.name
        assert callable(getattr(signatures.service_class(op.service), op.method)), op.name
        params = {p.name: p for p in signatures.parameters(op)}
        for name in op.path_params:
            assert params[name].where == "path", (op.name, name)
        required_local = [p.name for p in params.values() if p.required and p.where == "local"]
        assert not required_local, (op.name, required_local)
        assert operations.find(op.service, op.method) is op


def test_the_workspace_rows_match_the_workspace_signatures():
    for op in operations.OPERATIONS:
        if op.service == "workspace":
            sig, _ = signatures.signature(op)
            real = inspect.signature(getattr(Workspace, op.method))
            assert list(sig.parameters) == [n for n in real.parameters if n != "self"], op.name


def test_who_acts_is_never_sent_by_the_caller():
    approve = operations.find("models", "approve")
    where = {p.name: p.where for p in signatures.parameters(approve)}
    assert where == {"ref": "path", "reason": "body", "actor": "server", "force": "body"}
    ingest = {p.name: p.where for p in signatures.parameters(operations.find("datasets", "ingest"))}
    assert ingest["paths"] == "stream" and ingest["progress"] == "local"


def test_a_loop_travels_as_a_spec_or_a_name_never_a_path_of_the_server():
    import pytest
    from pydantic import TypeAdapter, ValidationError

    run = signatures.parameters(operations.find("loops", "run"))
    where = {p.name: p.where for p in run}
    assert where["spec"] == "body" and where["on_progress"] == "local"
    assert where["started_by"] == "local"  # a trigger's firing marker: the server's own
    spec = TypeAdapter({p.name: p.hint for p in run}["spec"])
    assert spec.validate_python("credit") == "credit"
    assert spec.validate_python({"name": "credit"}) == {"name": "credit"}
    for path in ("/srv/loop.yaml", "loop.yml", "..\\loop"):
        with pytest.raises(ValidationError):
            spec.validate_python(path)


def test_every_public_method_of_a_service_is_a_row_or_left_out_by_name():
    """A method added to a service is a route, or the table's docstring says why not."""
    import inspect

    rows = {op.name for op in operations.OPERATIONS}
    missing = []
    for service in sorted({op.service for op in operations.OPERATIONS}):
        cls = signatures.service_class(service)
        for name, _ in inspect.getmembers(cls, inspect.isfunction):
            full = f"{service}.{name}"
            if name.startswith("_") or full in rows:
                continue
            if f"``{full}``" not in operations.__doc__ and f"``{name}``" not in operations.__doc__:
                missing.append(full)
    assert not missing, missing
