"""[registry] four_eyes is read strictly (the refusal itself, through the API acting as its
tokens, is in tests/api/test_access_api.py)."""

from __future__ import annotations

import pytest

from modelloop import Workspace
from modelloop.errors import ConfigError


def test_four_eyes_is_a_boolean(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    assert ws.models.four_eyes is False
    config = ws.root / "modelloop.toml"
    config.write_text(config.read_text() + "\n[registry]\nfour_eyes = true\n")
    assert Workspace(ws.root).models.four_eyes is True
    config.write_text(config.read_text().replace("four_eyes = true", 'four_eyes = "yes"'))
    with pytest.raises(ConfigError, match="four_eyes must be true or false"):
        Workspace(ws.root)
