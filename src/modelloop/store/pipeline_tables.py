"""Tables of the pipeline engine (runs, steps, cache). Owned by the pipelines work."""

from __future__ import annotations

from modelloop.store.tables import metadata  # noqa: F401
