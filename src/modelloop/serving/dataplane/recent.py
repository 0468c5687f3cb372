"""The features of the requests a server process answered lately, by inference id: what feedback on
an online endpoint is joined to without waiting for the capture to be written."""

from __future__ import annotations

import threading
from collections import OrderedDict


class RecentRequests:
    """Features of the requests this server process answered lately, by inference id (a
    multi-row request's row i as ``ID:i``, as captures name them), for joining feedback to them
    without waiting for the capture to be written. Bounded: the oldest go first."""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self._rows: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, endpoint: str, inference_id: str, columns: list[str], X) -> None:
        """Keep a reference to the request's validated rows (no copy; they are not changed)."""
        with self._lock:
            self._rows[f"{endpoint}\0{inference_id}"] = (columns, X)
            while len(self._rows) > self.limit:
                self._rows.popitem(last=False)

    def features(self, endpoint: str, inference_id: str) -> dict | None:
        base, sep, row = inference_id.rpartition(":")
        with self._lock:
            hit = self._rows.get(f"{endpoint}\0{inference_id}")
            i = 0
            if hit is None and sep and row.isdigit():
                hit, i = self._rows.get(f"{endpoint}\0{base}"), int(row)
        if hit is None:
            return None
        columns, X = hit
        if i >= len(X):
            return None
        values = X.iloc[i].tolist() if hasattr(X, "iloc") else X[i].tolist()
        # a frame's row of mixed columns holds numpy scalars: plain values, as JSON has them
        return {c: v.item() if hasattr(v, "item") else v
                for c, v in zip(columns, values, strict=True)}
