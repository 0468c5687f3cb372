"""Per endpoint/variant counters and latency histograms, and their Prometheus text form.

Each server process counts in memory (a few integer additions per request) and writes its
cumulative counters to the metadata store once a second; ``endpoint stats`` and rollout checks sum
them over processes. Every ``metrics_seconds`` (and on shutdown) it also writes what happened in
the interval as metric series (:data:`SERIES`, :mod:`modelloop.telemetry.series`), for alarms to
watch. Written by hand rather than with prometheus_client because the numbers must be merged
across processes through the store, which its per-process registry does not do; the exposition
format itself is a few lines.
"""

from __future__ import annotations

import bisect

#: Histogram upper bounds in milliseconds (the last bucket is +Inf).
BUCKETS_MS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
              5000.0, 10000.0, 30000.0, 60000.0)


class VariantStats:
    """Cumulative counters of one variant of one endpoint in this process."""

    __slots__ = ("invocations", "errors_4xx", "errors_5xx", "model_errors", "model_ms",
                 "overhead_ms", "model_ms_sum", "overhead_ms_sum", "rows", "batches", "dirty")

    def __init__(self):
        self.invocations = self.errors_4xx = self.errors_5xx = self.model_errors = 0
        self.rows = self.batches = 0
        self.model_ms = [0] * (len(BUCKETS_MS) + 1)
        self.overhead_ms = [0] * (len(BUCKETS_MS) + 1)
        self.model_ms_sum = self.overhead_ms_sum = 0.0
        self.dirty = False

    def observe(self, status: int, model_ms: float, total_ms: float, rows: int = 0) -> None:
        self.invocations += 1
        self.rows += rows
        if 400 <= status < 500 and status != 424:
            self.errors_4xx += 1
        elif status >= 500 or status == 424:  # a model error is the server side's fault
            self.errors_5xx += 1
            if status == 424:
                self.model_errors += 1
        overhead = max(0.0, total_ms - model_ms)
        self.model_ms[bisect.bisect_left(BUCKETS_MS, model_ms)] += 1
        self.overhead_ms[bisect.bisect_left(BUCKETS_MS, overhead)] += 1
        self.model_ms_sum += model_ms
        self.overhead_ms_sum += overhead
        self.dirty = True

    def snapshot(self) -> dict:
        return {"invocations": self.invocations, "errors_4xx": self.errors_4xx,
                "errors_5xx": self.errors_5xx, "model_errors": self.model_errors,
                "rows": self.rows, "batches": self.batches, "buckets": list(BUCKETS_MS),
                "model_ms": list(self.model_ms), "overhead_ms": list(self.overhead_ms),
                "model_ms_sum": self.model_ms_sum, "overhead_ms_sum": self.overhead_ms_sum}


def merge(snapshots: list[dict]) -> dict:
    """Sum snapshots (of several processes) into one."""
    out: dict = {}
    for s in snapshots:
        for key, value in s.items():
            if key == "buckets":
                out[key] = value
            elif isinstance(value, list):
                prev = out.get(key) or [0] * len(value)
                out[key] = [a + b for a, b in zip(prev, value, strict=False)]
            else:
                out[key] = out.get(key, 0) + value
    return out


def percentile(counts: list[int] | None, buckets: list[float] | None, q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` (as Prometheus' histogram_quantile
    without interpolation); None without observations."""
    if not counts or not sum(counts):
        return None
    buckets = list(buckets or BUCKETS_MS)
    target = q * sum(counts)
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= target:
            return buckets[i] if i < len(buckets) else float("inf")
    return float("inf")


#: Metric series the server writes per endpoint/variant (dimensions ``endpoint``, ``variant``).
SERIES = ("endpoint.invocations", "endpoint.4xx_rate", "endpoint.5xx_rate",
          "endpoint.model_latency_p50_ms", "endpoint.model_latency_p99_ms",
          "endpoint.overhead_latency_p99_ms")


def interval_series(before: dict | None, after: dict) -> dict[str, float]:
    """The metric-series values of one interval, from two cumulative snapshots of a variant:
    invocations, 4xx and 5xx shares, and latency percentiles of the requests in between.
    Empty when nothing was served (a missing datapoint, which alarms treat as configured)."""
    before = before or {}

    def delta(key):
        a, b = after.get(key, 0), before.get(key, 0)
        if isinstance(a, list):
            return [x - y for x, y in zip(a, b or [0] * len(a), strict=False)]
        return a - b

    n = delta("invocations")
    if n <= 0:
        return {}
    buckets = after.get("buckets")
    out = {"endpoint.invocations": float(n),
           "endpoint.4xx_rate": delta("errors_4xx") / n,
           "endpoint.5xx_rate": delta("errors_5xx") / n}
    for key, name, q in (("model_ms", "endpoint.model_latency_p50_ms", 0.5),
                         ("model_ms", "endpoint.model_latency_p99_ms", 0.99),
                         ("overhead_ms", "endpoint.overhead_latency_p99_ms", 0.99)):
        value = percentile(delta(key), buckets, q)
        if value is not None and value != float("inf"):
            out[name] = value
    return out


def prometheus_text(rows: list[tuple[str, str, dict]]) -> str:
    """Prometheus text exposition of ``(endpoint, variant, snapshot)`` rows."""
    lines = []
    counters = [("invocations", "modelloop_endpoint_invocations_total", "Requests served"),
                ("errors_4xx", "modelloop_endpoint_4xx_total", "Requests answered 4xx"),
                ("errors_5xx", "modelloop_endpoint_5xx_total", "Requests answered 5xx or 424"),
                ("model_errors", "modelloop_endpoint_model_errors_total", "Model exceptions")]
    for key, name, help_ in counters:
        lines += [f"# HELP {name} {help_}.", f"# TYPE {name} counter"]
        for ep, var, s in rows:
            lines.append(f'{name}{{endpoint="{_esc(ep)}",variant="{_esc(var)}"}} {s.get(key, 0)}')
    for key, name, help_ in (("model_ms", "modelloop_endpoint_model_latency_seconds",
                              "Time in the model"),
                             ("overhead_ms", "modelloop_endpoint_overhead_latency_seconds",
                              "Time outside the model")):
        lines += [f"# HELP {name} {help_}.", f"# TYPE {name} histogram"]
        for ep, var, s in rows:
            labels = f'endpoint="{_esc(ep)}",variant="{_esc(var)}"'
            cum = 0
            counts = s.get(key) or []
            for i, c in enumerate(counts):
                cum += c
                le = "+Inf" if i >= len(BUCKETS_MS) else repr(BUCKETS_MS[i] / 1000)
                lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cum}')
            lines.append(f"{name}_sum{{{labels}}} {s.get(key + '_sum', 0.0) / 1000}")
            lines.append(f"{name}_count{{{labels}}} {cum}")
    return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
