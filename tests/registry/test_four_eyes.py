"""Four-eyes approval ([registry] four_eyes): who registered a version may not approve it."""

from __future__ import annotations

import pytest

from modelloop import Workspace
from modelloop.config import acting_as
from modelloop.errors import ConfigError, Forbidden


def test_the_registering_actor_may_not_approve_its_own_version(tmp_path):
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    ws = Workspace.init(tmp_path / "ws")
    with open(ws.root / "modelloop.toml", "a") as f:
        f.write("\n[registry]\nfour_eyes = true\n")
    ws = Workspace(ws.root)
    X = pd.DataFrame({"x": [0.0, 1.0]})
    save_package(DummyClassifier().fit(X, [0, 1]), tmp_path / "pkg", signature=Signature.from_frame(X))
    with acting_as("ci"):  # a server acting for token "ci"
        assert ws.models.register("m", tmp_path / "pkg")["created_by"] == "ci"
        with pytest.raises(Forbidden, match="registered by 'ci'") as err:
            ws.models.approve("m@1")
        assert err.value.status == 403
    assert ws.models.get("m@1")["status"] == "pending"
    with acting_as("ana"):
        assert ws.models.approve("m@1", reason="reviewed")["status_by"] == "ana"
    ws.close()
    (ws.root / "modelloop.toml").write_text(
        (ws.root / "modelloop.toml").read_text().replace("four_eyes = true", 'four_eyes = "yes"'))
    with pytest.raises(ConfigError, match="four_eyes must be true or false"):
        Workspace(ws.root)
