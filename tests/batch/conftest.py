"""Fixtures of the batch transform tests."""

from __future__ import annotations

import pytest
from transform_helpers import register_classifier


@pytest.fixture
def classifier(workspace):
    return register_classifier(workspace)
