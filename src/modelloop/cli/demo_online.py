"""``modelloop demo --online``: a model that learns from every labelled event, against a frozen
batch model, through a concept switch.

A face using only what a user has: it makes a workspace, trains and registers a batch model on
loan applications labelled by one Agrawal function (River's ``synth.Agrawal``, nothing
downloaded), makes it the champion, and creates an online endpoint whose primary is a River
Hoeffding adaptive tree learning from events and whose shadow is that champion (the learner's
frozen champion: what its guardrail judges it against, scored on the same events). It starts
``modelloop serve`` (which starts the endpoint's learner, ``modelloop learn``), then streams
applicants over HTTP: each batch is first answered by the endpoint (``/invocations``, the online
model's answer as served then), then its labels are posted (``/events``) and learned. At
``switch_at`` the approval rule becomes another Agrawal function: the frozen champion keeps the
old rule, the online model learns the new one.

The windowed accuracies the summary shows are the learner's own prequential metric series
(``online.Accuracy`` and ``online.champion.Accuracy``, one point per window of ``window``
events), read back from the workspace; the served accuracy is the demo's own count of what the
endpoint answered before each label was known.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

from modelloop.cli import render

ENDPOINT = "loans-online"
MODEL = "loans"
VARIANT = "online"
TARGET = "approved"
FEATURES = ["salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears",
            "loan"]
#: The online model: a Hoeffding adaptive tree (its nodes watch their own error with ADWIN and
#: regrow where the concept moved), from nothing: it learns the first rule from the stream too.
ONLINE_MODEL = "tree.HoeffdingAdaptiveTreeClassifier(grace_period=50, delta=1e-05, seed=1)"
#: Agrawal's approval rules before and after the switch: 0 looks at age only, 6 at disposable
#: income (two thirds of salary and commission, less a fifth of the loan). Both split applicants
#: about evenly (two thirds and a half), so after the switch the frozen model is as good as a
#: coin, and no model scores well by answering one class.
BEFORE, AFTER = 0, 6
#: Applications the batch champion trains on (before the switch, drawn apart from the stream).
TRAIN_ROWS = 2000
#: Events per HTTP request (answers asked, then labels posted).
BATCH = 25
#: How long the learner may take to learn the last event once the stream has been posted.
LEARN_TIMEOUT = 120.0


def applications(day: int, rows: int, function: int, seed: int):
    """A DataFrame of ``rows`` applicants (the nine Agrawal features and ``approved``)."""
    from modelloop.data.agrawal import daily_applications

    frame = daily_applications(day, rows, seed=seed, function=function)
    return frame[[*FEATURES, TARGET]]


class OnlineDemo:
    def __init__(self, root: Path, *, events: int, switch_at: int, window: int, rate: float,
                 quiet: bool = False, seed: int = 42):
        self.root = Path(root)
        self.events, self.switch_at, self.window = events, switch_at, window
        self.rate, self.quiet, self.seed = rate, quiet, seed
        self.started = time.time()
        self.requests = self.failures = 0
        self.errors: list[str] = []
        self.accepted = self.rejected = 0
        self.served: list[object | None] = []  # per event: what the endpoint answered, or None
        self.labels: list[int] = []
        self._shown = 0  # windows shown so far
        self._used = 0.0  # when the connection last sent a request

    # -- output -------------------------------------------------------------------------------
    def _line(self, stage: str, text: str) -> None:
        if not self.quiet:
            render.err.print(f"[{time.time() - self.started:5.1f}s] {stage:<8} {text}",
                             markup=False)

    # -- the play -------------------------------------------------------------------------------
    def play(self) -> dict:
        from modelloop.cli.demo import free_port, start_serve, stop_up
        from modelloop.workspace import Workspace

        ws = Workspace.init(self.root)
        ws.jobs.warm_up()  # the job server imports while the data is drawn
        self.ws = ws
        port = free_port()
        # started first: its imports overlap the champion's training, and it starts the
        # endpoint's learner (modelloop learn) once the endpoint exists
        server = start_serve(self.root, port, self.root / "serve.log")
        try:
            self._line("setup", f"workspace {self.root}; modelloop serve on 127.0.0.1:{port} "
                       "(log: serve.log)")
            champion = self._champion(ws)
            self._endpoint(ws, champion)
            self._play_stream(port, self._stream_rows())
            self._wait_learned(len(self.labels) // self.window)
        finally:
            stop_up(server)
        return self.summary(ws, champion)

    def _champion(self, ws) -> str:
        """The batch model: ingested, trained, registered, approved and made the champion."""
        path = self.root / "applications.csv"
        applications(0, TRAIN_ROWS, BEFORE, self.seed).to_csv(path, index=False)
        version = ws.datasets.ingest(MODEL, [path]).version
        self._line("ingest", f"{version.ref}: {version.added_rows:,} loan applications "
                   f"(Agrawal function {BEFORE})")
        job = ws.training.train(version.ref, TARGET, "hist_gradient_boosting",
                                name="the demo's batch champion")
        if str(job["status"]) != "succeeded":
            from modelloop.errors import ModelloopError

            raise ModelloopError(f"training the batch model failed ({job['status']})",
                                 hint=f"see 'modelloop -w {self.root} jobs logs {job['id']}'")
        ref = ws.models.register_from_job(MODEL, job["id"])["ref"]
        ws.models.approve(ref, reason="the online demo's batch champion")
        ws.models.set_alias(MODEL, "champion", ref)
        self._line("train", f"{ref}: a gradient-boosted model trained on {version.ref}, "
                   "approved, champion; frozen from now on")
        return ref

    def _endpoint(self, ws, champion: str) -> None:
        online = {"model": ONLINE_MODEL, "features": [{"name": f} for f in FEATURES],
                  "label": "class", "guard": {"window": self.window}}
        ws.endpoints.create(ENDPOINT, variants=[
            {"name": VARIANT, "online": online},
            {"name": "champion", "model": champion, "role": "shadow"}])
        # events need an operator's token (the endpoint's default auth): the demo's own
        self._token = ws.tokens.create("demo-events", role="operator", expires="1d")["token"]
        self._line("endpoint", f"{ENDPOINT}: online primary {ONLINE_MODEL}, learning from "
                   f"events (the server starts its learner); {champion} its frozen shadow, "
                   f"scored on the same events (windows of {self.window} events)")

    def _stream_rows(self) -> list[tuple[dict, int]]:
        before = applications(1, self.switch_at, BEFORE, self.seed)
        after = applications(2, self.events - self.switch_at, AFTER, self.seed)
        rows = []
        for frame in (before, after):
            labels = frame[TARGET].tolist()
            rows += zip(frame[FEATURES].to_dict("records"), labels, strict=True)
        return rows

    # -- the stream -----------------------------------------------------------------------------
    def _post(self, conn, path: str, body: dict | list) -> tuple[int, dict]:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json",
                              "Authorization": f"Bearer {self._token}"})
        resp = conn.getresponse()
        payload = resp.read()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = {"message": payload[:200].decode(errors="replace")}
        return resp.status, answer

    def _request(self, conn, path: str, body) -> dict | None:
        """One request as a user sends it; a failure (not 200, or no answer) is counted."""
        self.requests += 1
        if time.monotonic() - self._used > 2.0:
            conn.close()  # the server closes idle keep-alive connections after 5 s: a new one
        self._used = time.monotonic()
        try:
            status, answer = self._post(conn, path, body)
            if status == 200:
                return answer
            why = f"HTTP {status}: {str(answer.get('message') or answer)[:200]}"
        except (OSError, http.client.HTTPException) as exc:
            why = f"{type(exc).__name__}: {exc}"
            conn.close()
        self.failures += 1
        if len(self.errors) < 5:
            self.errors.append(f"{path}: {why}")
        return None

    def _play_stream(self, port: int, stream: list[tuple[dict, int]]) -> None:
        """The first batch of labels teaches the model its first revision (nothing is served
        before it); then each batch is answered first, its labels posted after."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        base = f"/endpoints/{ENDPOINT}"
        try:
            self._wait_serving(conn, "the server did not serve the endpoint", learned=False)
            self._events(conn, base, stream[:BATCH], served=[None] * min(BATCH, len(stream)))
            self._line("stream", f"the first {BATCH} labelled events posted; waiting for the "
                       "learner's first revision (its process starts with the endpoint)")
            self._wait_serving(conn, "the learner published nothing", learned=True)
            self._line("stream", f"the online model's first revision serves; streaming at "
                       f"{self.rate:g} events/s in requests of {BATCH}")
            interval, due = BATCH / self.rate, time.perf_counter()
            for start in range(BATCH, len(stream), BATCH):
                # live, not a replay: at each window's first request the stream waits until
                # the learner has learned every event before it (a busy machine lags), so a
                # window is served by what was learned up to its start, not a window earlier
                self._wait_learned(start // self.window)
                chunk = stream[start:start + BATCH]
                answer = self._request(conn, f"{base}/invocations",
                                       {"instances": [x for x, _ in chunk]})
                served = (answer or {}).get("predictions") or [None] * len(chunk)
                if start <= self.switch_at < start + BATCH:
                    self._line("switch", f"after event {self.switch_at:,} the approval rule "
                               f"is Agrawal function {AFTER} (was {BEFORE})")
                self._events(conn, base, chunk, served)
                due += interval
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -1.0:  # fell behind (a busy machine): no burst to catch up
                    due = time.perf_counter()
        finally:
            conn.close()

    def _events(self, conn, base: str, chunk: list[tuple[dict, int]], served: list) -> None:
        answer = self._request(conn, f"{base}/events",
                               [{"features": x, "label": y} for x, y in chunk])
        self.accepted += int((answer or {}).get("accepted") or 0)
        self.rejected += len(chunk) - int((answer or {}).get("accepted") or 0)
        self.served += served
        self.labels += [y for _, y in chunk]

    def _wait_serving(self, conn, what: str, learned: bool, timeout: float = 60.0) -> None:
        """Until the server serves the endpoint (GET /endpoints: a server picks up a new one
        within a second) or, ``learned``, a revision its learner published."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn.request("GET", "/endpoints")
                resp = conn.getresponse()
                info = json.loads(resp.read()).get(ENDPOINT)
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                info = None
            model = ((info or {}).get("variants") or {}).get(VARIANT, {}).get("model") or "@0"
            if info is not None and (not learned or not model.endswith("@0")):
                return
            time.sleep(0.05)
        from modelloop.errors import ModelloopError

        raise ModelloopError(f"{what} within {timeout:g} s", hint=f"see {self.root}/serve.log")

    def _wait_learned(self, windows: int) -> None:
        """Until the learner has closed ``windows`` windows (each a point of its series)."""
        deadline = time.monotonic() + LEARN_TIMEOUT
        while self._shown < windows:
            self._show_windows()
            if self._shown >= windows:
                return
            if time.monotonic() > deadline:
                from modelloop.errors import ModelloopError

                raise ModelloopError(f"the learner did not learn {windows * self.window:,} "
                                     f"events within {LEARN_TIMEOUT:g} s",
                                     hint=f"see {self.root}/serve.log")
            time.sleep(0.05)

    # -- what the learner recorded --------------------------------------------------------------
    def _series(self, name: str) -> list[float]:
        """A window series the learner writes (``online.Accuracy``, ``online.champion.Accuracy``,
        ``online.guard.breach``): one value per window, in order."""
        dims = {"endpoint": ENDPOINT, "variant": VARIANT}
        return [float(p["value"]) for p in self.ws.monitoring.metric(name, dims)]

    def _show_windows(self) -> None:
        """A line for each window the learner closed since the last call."""
        online = self._series("online.Accuracy")
        if len(online) <= self._shown:
            return
        frozen = self._series("online.champion.Accuracy")
        for i in range(self._shown, min(len(online), len(frozen))):
            first, last = i * self.window + 1, (i + 1) * self.window
            self._line("learn", f"events {first:,}-{last:,} ({self._concept(first, last)}): "
                       f"online {online[i]:.3f}, frozen {frozen[i]:.3f}")
            self._shown = i + 1

    def _concept(self, first: int, last: int) -> str:
        if last <= self.switch_at:
            return "before"
        return "after" if first > self.switch_at else "switch"

    def summary(self, ws, champion: str) -> dict:
        online, frozen = self._series("online.Accuracy"), self._series("online.champion.Accuracy")
        breaches = self._series("online.guard.breach")
        windows = []
        for i in range(min(len(online), len(frozen))):
            first, last = i * self.window + 1, (i + 1) * self.window
            served = [s == y for s, y in zip(self.served[first - 1:last],
                                             self.labels[first - 1:last], strict=True)
                      if s is not None]
            windows.append({"window": i + 1, "first_event": first, "last_event": last,
                            "concept": self._concept(first, last), "online": online[i],
                            "frozen": frozen[i],
                            "served": sum(served) / len(served) if served else None})
        after = [w for w in windows if w["concept"] == "after"]
        tail = after[-max(1, len(after) // 3):]  # the last third after the switch: recovered?
        last_before = next((w for w in reversed(windows) if w["concept"] == "before"), None)

        def back(model: str) -> int | None:
            """Events after the switch until ``model``'s window accuracy was back within 5
            points of its own just before the switch (None: not within the stream)."""
            return next((w["last_event"] - self.switch_at for w in after
                         if last_before and w[model] >= last_before[model] - 0.05), None)

        return {
            "workspace": str(self.root),
            "endpoint": ENDPOINT,
            "online_model": ONLINE_MODEL,
            "champion": champion,
            "functions": {"before": BEFORE, "after": AFTER},
            "events": len(self.labels),
            "switch_at": self.switch_at,
            "window": self.window,
            "windows": windows,
            "before": _phase([w for w in windows if w["concept"] == "before"]),
            "after": _phase(after),
            "recovered": _phase(tail),
            "recovered_within_events": {"online": back("online"), "frozen": back("frozen")},
            "guard_reverts": int(sum(breaches)),
            "requests": self.requests,
            "failures": self.failures,
            "errors": self.errors,
            "events_accepted": self.accepted,
            "events_rejected": self.rejected,
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _phase(windows: list[dict]) -> dict:
    served = [w["served"] for w in windows if w["served"] is not None]
    return {"windows": len(windows), "online": _mean([w["online"] for w in windows]),
            "frozen": _mean([w["frozen"] for w in windows]), "served": _mean(served)}


def show_online(summary: dict) -> None:
    def pct(v):
        return "-" if v is None else f"{v:.1%}"

    def marked(w):
        better = w["online"] > w["frozen"] + 0.05
        worse = w["online"] < w["frozen"] - 0.05
        o = pct(w["online"])
        return f"[green]{o}[/green]" if better else f"[red]{o}[/red]" if worse else o

    rows = [[f"{w['first_event']:,}-{w['last_event']:,}", w["concept"], marked(w),
             pct(w["frozen"]), pct(w["served"])] for w in summary["windows"]]
    render.table(f"Accuracy per window of {summary['window']} events (the approval rule "
                 f"switches after event {summary['switch_at']:,})",
                 ["events", "rule", "online (learned)", "frozen (champion)", "online (served)"],
                 rows)
    b, a, r = summary["before"], summary["after"], summary["recovered"]
    render.out.print(f"Before the switch: online {pct(b['online'])}, frozen {pct(b['frozen'])}. "
                     f"After it: online {pct(a['online'])}, frozen {pct(a['frozen'])}; over the "
                     + (f"last {r['windows']} windows" if r["windows"] > 1 else "last window")
                     + f" online [bold]{pct(r['online'])}[/bold], frozen "
                     f"[bold]{pct(r['frozen'])}[/bold].")
    within = summary["recovered_within_events"]

    def back(model: str, who: str) -> str:
        n = within[model]
        return (f"{who} was back within 5 points of its accuracy before the switch {n:,} events "
                "after it" if n is not None else f"{who} was not, by the end of the stream")
    render.out.print(f"{back('online', 'The online model')}; {back('frozen', 'the frozen one')}. "
                     f"Guard reverts: {summary['guard_reverts']}.")
    render.out.print(f"Demo finished in {summary['seconds']:.1f}s: {summary['events']:,} events "
                     f"learned, {summary['requests']:,} requests, {summary['failures']} failed.")
    render.out.print(f"Next: cd {summary['workspace']} && modelloop endpoint show {ENDPOINT} && "
                     "modelloop metrics show online.Accuracy --dim endpoint=" + ENDPOINT
                     + " --dim variant=" + VARIANT)
