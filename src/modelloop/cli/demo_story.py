"""The closed-loop demo's story: its loop spec, daily files landing in a watched folder, and a
steady load of real HTTP requests (capture on) whose ground truth is posted later through the
feedback route.

Nothing here decides anything: the files land and the requests flow, and everything else (ingest,
drift check, alarms, the retrain, the canary) is done by modelloop's own machinery. The story
only counts what the users of the endpoint saw (requests served, failures, the AUC of what they
were answered), which the summary table shows beside what modelloop recorded.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

#: The features a request carries (Agrawal's nine applicant attributes; the model's signature).
FEATURES = ["salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan"]
#: From the drift day on, applicants' money columns are this much higher (covariate shift: what
#: the drift monitor sees) and "approved" follows another Agrawal function (concept drift: what
#: the model-quality monitor sees once labels arrive).
INFLATION = 1.35
FUNCTION_BEFORE, FUNCTION_AFTER = 0, 2

DEMO_SPEC = """\
# The closed-loop demo's loop. 'modelloop loop apply loop.yaml' makes everything below; the
# controller ('modelloop up') then does the rest: each file landing in incoming/ is ingested, the
# drift monitor checks each new day against the champion's training data, the quality monitor
# scores the endpoint's answers against the ground truth posted later, either alarm retrains (one
# run at a time), and a candidate that beats the champion by 0.005 AUC on the freshest rows is
# promoted and rolled out as a canary while requests flow.
name: loans
data:
  dataset: loans
  event_time_column: applied_at
  window: 1                 # retrain on the newest day
target: approved
split: {{method: time, fraction: 0.25, time_column: applied_at}}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {{max_iter: {max_iter}}}
evaluate:
  metric: roc_auc
  gate:
    - min_absolute_change: 0.005
register:
  approval: auto
deploy:
  endpoint: loans
  strategy: canary
  capture: {{enabled: true, sampling: 100}}
  options: {{canary_percent: 25, bake_seconds: {bake}, min_requests: 10, max_error_rate: 0.01,
             max_wait: 60}}
monitors:
  - name: drift             # each ingested day (alarm loans-drift)
    kind: data_drift
    # drift_share >= 0.2 in one of the last two 5 s periods (two: a point written just before a
    # period ends is still seen by the evaluation just after)
    alarm: {{threshold: 0.2, period: 5, evaluation_periods: 2, datapoints_to_alarm: 1,
             missing_data: ignore}}
  - name: quality           # the endpoint's answers against late ground truth (loans-quality)
    kind: model_quality
    schedule: "* * * * * */{quality_every}"   # every {quality_every} s (croniter's sixth field: seconds)
    options: {{window: {quality_window}s}}
    alarm: {{metric: quality.roc_auc, comparison: "<", threshold: 0.8, period: {quality_every},
             evaluation_periods: 2, datapoints_to_alarm: 1, missing_data: ignore}}
triggers:
  - name: incoming          # each file landing in incoming/ is ingested once
    on: watch
    location: incoming/
    dataset: loans
    pattern: "*.csv"
    settle_seconds: 0       # files land by rename: whole when they appear
    do: ingest
  - name: retrain-on-drift  # the loop runs; never two runs of it at once
    on: alarm
    alarm: drift
    concurrency: skip
  - name: retrain-on-quality
    on: alarm
    alarm: quality
    concurrency: skip
  - name: retrain-now       # by hand (the demo presses it once, for the first champion)
    on: manual
"""


def demo_spec(*, max_iter: int = 60, bake: float = 3.0, quality_every: int = 3,
              quality_window: int = 10) -> str:
    return DEMO_SPEC.format(max_iter=max_iter, bake=bake, quality_every=quality_every,
                            quality_window=quality_window)


@dataclass
class Day:
    """One simulated day: the file that landed and what the endpoint's users saw meanwhile."""

    number: int  # 1-based
    drifted: bool
    file: Path | None = None
    landed: float | None = None  # time.time() when the file appeared under its final name
    requests: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    # (variant, probability of "approved", true label) of answered requests whose label came back
    scored: list[tuple[str, float, int]] = field(default_factory=list)


def day_frame(day: int, rows: int, *, drift_day: int, seed: int):
    """Day ``day``'s (1-based) applications: the same applicants until the drift day, then
    richer ones labelled by another rule."""
    from modelloop.data.agrawal import daily_applications

    drifted = day >= drift_day
    return daily_applications(day - 1, rows, seed=seed,
                              function=FUNCTION_AFTER if drifted else FUNCTION_BEFORE,
                              inflation=INFLATION if drifted else 1.0)


def land_file(folder: Path, day: int, frame) -> Path:
    """Write a day's CSV the way a file transfer does: under a temporary name, then renamed, so
    a watcher never sees it half-written."""
    from datetime import timedelta

    from modelloop.data.agrawal import START

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"loans-{START + timedelta(days=day - 1):%Y-%m-%d}.csv"
    tmp = folder / f".{path.name}.part"
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


class Traffic:
    """A steady load of single-row requests to ``/endpoints/NAME/invocations`` (SageMaker runtime,
    CSV with a header, probabilities asked), from a thread of its own over one keep-alive
    connection, and a second thread that posts each answered request's ground truth to
    ``/endpoints/NAME/feedback`` ``label_delay`` seconds later.

    Each request carries its application id as the inference id, so the label needs no lookup.
    A failure is any answer that is not 200 or a connection error: what a user would see.
    """

    def __init__(self, host: str, port: int, endpoint: str, *, rate: float = 30.0,
                 label_delay: float = 1.0, senders: int = 2, token: str | None = None):
        self.host, self.port, self.endpoint = host, port, endpoint
        self.feedback_headers = {"Content-Type": "application/json",
                                 **({"Authorization": f"Bearer {token}"} if token else {})}
        self.rate, self.senders = rate, senders
        self.label_delay = label_delay
        self.day: Day | None = None
        self._rows: list[tuple[str, str, int]] = []  # (inference id, csv body, label)
        self._next = 0
        self._pending: deque = deque()  # (due, day, inference id, label, variant, proba)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.feedback_failures = 0

    def set_day(self, day: Day, frame) -> None:
        """Serve applicants of ``day`` from now on."""
        header = ",".join(FEATURES)
        rows = []
        for rec in frame[["application_id", *FEATURES, "approved"]].itertuples(index=False):
            values = ",".join(str(v) for v in rec[1:-1])
            rows.append((f"live-{rec[0]}", f"{header}\n{values}\n", int(rec[-1])))
        with self._lock:
            self.day, self._rows, self._next = day, rows, 0

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the endpoint answers (a server picks up a new endpoint within about a
        second); these probes are not counted as the load's requests."""
        deadline = time.monotonic() + timeout
        body = f"{','.join(FEATURES)}\n{','.join('1' for _ in FEATURES)}\n".encode()
        while True:
            conn = self._connection()
            try:
                conn.request("POST", f"/endpoints/{self.endpoint}/invocations", body=body,
                             headers={"Content-Type": "text/csv",
                                      "X-Amzn-SageMaker-Custom-Attributes": "header=present"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"endpoint {self.endpoint} did not answer within {timeout} s")
            time.sleep(0.1)

    def start(self) -> None:
        targets = [self._send_loop] * self.senders + [self._feedback_loop]
        for target in targets:
            t = threading.Thread(target=target, name=f"demo-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop sending; labels still due are posted first, so the last requests count too."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    # -- requests ---------------------------------------------------------------------------
    def _connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def _send_loop(self) -> None:
        conn = self._connection()
        interval = self.senders / self.rate
        due = time.perf_counter()
        path = f"/endpoints/{self.endpoint}/invocations"
        while not self._stop.is_set():
            with self._lock:
                day, rows = self.day, self._rows
                if not rows:
                    row = None
                else:
                    row = rows[self._next % len(rows)]
                    self._next += 1
            if row is None or day is None:
                time.sleep(0.05)
                due = time.perf_counter()
                continue
            inference_id, body, label = row
            try:
                conn.request("POST", path, body=body.encode(), headers={
                    "Content-Type": "text/csv",
                    "Accept": "application/json",
                    "X-Amzn-SageMaker-Custom-Attributes": "header=present; probabilities=true",
                    "X-Amzn-SageMaker-Inference-Id": inference_id,
                })
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {payload[:200]!r}")
                variant = resp.getheader("x-Amzn-Invoked-Production-Variant") or "?"
                proba = _approved_probability(json.loads(payload))
                with self._lock:
                    day.requests += 1
                    self._pending.append((time.monotonic() + self.label_delay, day,
                                          inference_id, label, variant, proba))
            except Exception as exc:  # what a user of the endpoint would have seen
                with self._lock:
                    day.requests += 1
                    day.failures += 1
                    if len(day.errors) < 5:
                        day.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = self._connection()
            due += interval
            pause = due - time.perf_counter()
            if pause > 0:
                self._stop.wait(pause)
            elif pause < -1.0:  # fell behind (a busy machine): do not burst to catch up
                due = time.perf_counter()
        conn.close()

    # -- late ground truth --------------------------------------------------------------------
    def _feedback_loop(self) -> None:
        conn = self._connection()
        path = f"/endpoints/{self.endpoint}/feedback"
        while True:
            stopping = self._stop.is_set()
            now = time.monotonic()
            batch = []
            with self._lock:
                while self._pending and (stopping or self._pending[0][0] <= now):
                    batch.append(self._pending.popleft())
            if batch:
                body = json.dumps([{"inference_id": b[2], "label": b[3]} for b in batch])
                try:
                    conn.request("POST", path, body=body.encode(), headers=self.feedback_headers)
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                except Exception:
                    ok = False
                    conn.close()
                    conn = self._connection()
                if ok:
                    for _, day, _, label, variant, proba in batch:
                        if proba is not None:
                            day.scored.append((variant, proba, label))
                else:
                    self.feedback_failures += len(batch)
            if stopping and not self._pending:
                break
            time.sleep(0.25)
        conn.close()


def _approved_probability(answer: dict) -> float | None:
    """P(approved = 1) from a SageMaker JSON answer with probabilities."""
    probs = answer.get("probabilities")
    classes = answer.get("classes")
    if not probs or not classes:
        return None
    row = probs[0]
    for i, c in enumerate(classes):
        if str(c) == "1":
            return float(row[i])
    return None


def auc(scored: list[tuple[str, float, int]], variant: str | None = None) -> float | None:
    """ROC AUC of the answers (of one variant), None without both classes among the labels."""
    pairs = [(p, y) for v, p, y in scored if variant is None or v == variant]
    if len({y for _, y in pairs}) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([y for _, y in pairs], [p for p, _ in pairs]))
