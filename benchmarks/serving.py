"""Real-time serving: modelloop vs `mlflow models serve` vs a bare Starlette floor.

The same scikit-learn LogisticRegression (20 features) is served three ways on loopback and driven
by the same closed-loop keep-alive load generator at concurrency 1, 8 and 32, with 1-row and 100-row
`dataframe_split` JSON bodies. Prints req/s, p50 and p99 per point and modelloop's ratios.

Then a model trained by `modelloop train` with its preprocessing (imputation, scaling, one-hot
and ordinal encoding of numeric and text columns, logistic regression), served by modelloop, as a
ratio to the bare model's floor (goal >= 0.7x) and to `mlflow models serve` with the same fitted
pipeline logged by `mlflow.sklearn.log_model` (goal >= 10x), predictions checked equal first
(`pipeline_serving`).

Then two figures of modelloop alone:
- the cost of data capture at 100% (both input and output): req/s of an endpoint capturing every
  request over the same model without capture, single row at concurrency 8 (goal: <= 10% cost),
  next to the records dropped: every request the capturing endpoint answered is counted by the
  client and must be found in the capture store afterwards (goal: 0 dropped);
- micro-batching: a 100-tree random forest (~5 ms per single-row predict) at concurrency 32,
  single row, modelloop (which gathers concurrent requests into one predict) over the bare floor
  serving the same forest unbatched (goal: >= 3x).

    python benchmarks/serving.py            # ~2 min: 2 s per point
    python benchmarks/serving.py --full     # 10 s per point
    python benchmarks/serving.py --no-mlflow
    python benchmarks/serving.py --only-pipeline   # the trained pipeline's figures alone

The load generator is a small asyncio HTTP/1.1 client (written here because wrk is not installed
and httpx's own per-request cost would be larger than the servers' on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

FEATURES = [f"x{i}" for i in range(20)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _client(host, port, path, body, stop_at, lat, errors):
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    msg = head + body
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        writer.write(msg)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        lat.append(time.perf_counter() - t0)
        if b" 200 " not in status_line:
            errors.append(status_line)
    writer.close()


def load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> dict:
    async def main():
        lat, errors = [], []
        warm = time.perf_counter() + min(1.0, seconds / 2)
        await asyncio.gather(*[_client("127.0.0.1", port, path, body, warm, [], [])
                               for _ in range(concurrency)])
        t0 = time.perf_counter()
        await asyncio.gather(*[_client("127.0.0.1", port, path, body, t0 + seconds, lat, errors)
                               for _ in range(concurrency)])
        wall = time.perf_counter() - t0
        lat.sort()
        return {"rps": len(lat) / wall, "p50": lat[len(lat) // 2] * 1000,
                "p99": lat[int(len(lat) * 0.99)] * 1000, "errors": len(errors)}

    return asyncio.run(main())


FLOOR_APP = textwrap.dedent("""
    import json, numpy as np, skops.io
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    model = skops.io.load({path!r}, trusted={trusted!r})
    async def inv(request):
        doc = json.loads(await request.body())
        X = np.asarray(doc["dataframe_split"]["data"], dtype=np.float64)
        return Response(json.dumps({{"predictions": model.predict(X).tolist()}}),
                        media_type="application/json")
    app = Starlette(routes=[Route("/invocations", inv, methods=["POST"])])
""")


def wait_up(port: int, path: str, proc, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = getattr(proc, "log_path", None)
            tail = Path(log).read_text(errors="replace")[-1500:] if log else ""
            raise RuntimeError(f"server exited (log: {log}):\n{tail}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def start(cmd, env=None, cwd=None):
    log = tempfile.NamedTemporaryFile(prefix="bench-serving-", suffix=".log", delete=False)  # noqa: SIM115 - the server writes it after we return
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    proc.log_path = log.name  # proc.stderr is None: the server writes the file itself
    return proc


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def alternate(runs: dict, rounds: int) -> dict:
    """Median req/s of each named load run, run in turns so drift on a shared machine hits all."""
    import statistics

    seen: dict[str, list[float]] = {n: [] for n in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            res = run()
            if res["errors"]:
                raise RuntimeError(f"{name}: {res['errors']} failed requests")
            seen[name].append(res["rps"])
    return {n: statistics.median(v) for n, v in seen.items()}


# -- capture cost ---------------------------------------------------------------------------
CAPTURE_GOAL = 10.0  # percent of req/s at most, for capturing 100% of requests (input + output)


def _counted_load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> dict:
    """:func:`load`, also counting every request answered (the warm-up's too), so the capture
    store can be checked against it."""
    async def main():
        warm, lat, errors = [], [], []
        stop = time.perf_counter() + min(1.0, seconds / 2)
        await asyncio.gather(*[_client("127.0.0.1", port, path, body, stop, warm, errors)
                               for _ in range(concurrency)])
        t0 = time.perf_counter()
        await asyncio.gather(*[_client("127.0.0.1", port, path, body, t0 + seconds, lat, errors)
                               for _ in range(concurrency)])
        wall = time.perf_counter() - t0
        return {"rps": len(lat) / wall, "errors": len(errors),
                "answered": len(warm) + len(lat) - len(errors)}

    return asyncio.run(main())


def captured_records(ws, endpoint: str, expected: int, settle: float = 15.0) -> int:
    """Records of ``endpoint`` in the capture store, waiting for the server's writer (it
    flushes every second) until ``expected`` are there or the count stops growing."""
    last, changed = -1, time.monotonic()
    while True:
        n = sum(f["records"] for f in ws.store.list_capture_files(endpoint))
        if n >= expected:
            return n
        if n != last:
            last, changed = n, time.monotonic()
        elif time.monotonic() - changed > settle:
            return n
        time.sleep(0.25)


def _cpu_seconds(pid: int | None) -> float:
    """CPU time of a server process and its children (0 when unknown)."""
    if pid is None:
        return 0.0
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def capture_cost(ws, port: int, body: bytes, seconds: float, rounds: int = 3,
                 pid: int | None = None) -> dict:
    """The cost of capturing 100% of requests (input and output) and the records it dropped.

    The same single-row request to two endpoints of one server over the same model, one
    capturing every request and one not, at concurrency 8, alternating ``rounds`` times (so
    drift on a shared machine hits both); the cost is 1 - median req/s with / without. Every
    request the capturing endpoint answered (warm-ups included) must be in the capture store
    afterwards: the records dropped are answered - captured (goal: 0). With the server's
    ``pid``, also its CPU time per request answered with and without capture: a figure that a
    busy machine disturbs much less than req/s.
    """
    before = sum(f["records"] for f in ws.store.list_capture_files("lr-capture"))
    seen: dict[str, list[float]] = {"off": [], "on": []}
    cpu = {"off": [0.0, 0], "on": [0.0, 0]}  # server CPU seconds, requests
    answered = 0
    for _ in range(rounds):
        for name, path in (("off", "/mlflow/lr/invocations"),
                           ("on", "/mlflow/lr-capture/invocations")):
            c0 = _cpu_seconds(pid)
            res = _counted_load(port, path, body, 8, seconds)
            if res["errors"]:
                raise RuntimeError(f"capture {name}: {res['errors']} failed requests")
            seen[name].append(res["rps"])
            if name == "on":
                answered += res["answered"]
            if pid is not None:  # both wait past the writer's flush: its work counts for "on"
                time.sleep(1.5)
            cpu[name][0] += _cpu_seconds(pid) - c0
            cpu[name][1] += res["answered"]
    import statistics

    on, off = statistics.median(seen["on"]), statistics.median(seen["off"])
    captured = captured_records(ws, "lr-capture", before + answered) - before
    cost = (1 - on / off) * 100
    out = {"on": on, "off": off, "cost": cost, "answered": answered, "captured": captured,
           "dropped": answered - captured}
    if pid is not None:
        per = {k: c / max(n, 1) * 1e6 for k, (c, n) in cpu.items()}
        out["cpu_us"] = per
        print(f"server CPU per request: {per['on']:.0f} us with capture, {per['off']:.0f} us "
              f"without (+{(per['on'] / per['off'] - 1) * 100:.1f}%)")
    print(f"capture at 100% (input+output), 1 row, c=8: {on:.0f} vs {off:.0f} req/s without = "
          f"{on / off:.2f}x, cost {cost:.1f}% (goal <= {CAPTURE_GOAL:g}%); {answered} requests "
          f"answered, {captured} records captured, dropped {answered - captured} (goal 0)",
          flush=True)
    return out


def capture_rows(cap: dict) -> list[dict]:
    """The capture figures as benchmarks/run_all.py rows."""
    return [
        {"benchmark": "serving", "figure": "capture 100% (input+output): cost in req/s",
         "value": cap["cost"], "unit": "%", "goal": f"<= {CAPTURE_GOAL:g}%",
         "met": cap["cost"] <= CAPTURE_GOAL,
         "note": f"{cap['on']:.0f} vs {cap['off']:.0f} req/s, 1 row, c=8"},
        {"benchmark": "serving", "figure": "capture: records dropped",
         "value": cap["dropped"], "unit": "records", "goal": "0", "met": cap["dropped"] == 0,
         "note": f"{cap['captured']} captured of {cap['answered']} answered"},
    ] + ([{"benchmark": "serving", "figure": "capture: server CPU per request, with / without",
           "value": cap["cpu_us"]["on"] / cap["cpu_us"]["off"], "unit": "x", "goal": None,
           "met": None, "note": f"{cap['cpu_us']['on']:.0f} vs {cap['cpu_us']['off']:.0f} us"}]
         if "cpu_us" in cap else [])


def capture_serving(seconds: float, rounds: int = 3) -> dict:
    """The capture section on its own: a logistic regression (20 features) behind two endpoints
    of one ``modelloop serve``, one capturing every request; see :func:`capture_cost`."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from modelloop import Workspace
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    tmp = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    ws = Workspace.init(tmp / "ws")
    save_package(LogisticRegression(max_iter=500).fit(frame, y), tmp / "pkg",
                 signature=Signature.from_frame(frame))
    ref = ws.models.register("lr", tmp / "pkg")["ref"]
    ws.models.approve(ref, reason="benchmark")
    ws.endpoints.create("lr", ref)
    ws.endpoints.create("lr-capture", ref,
                        capture={"enabled": True, "sampling": 100, "mode": "both"})
    port = free_port()
    proc = start([sys.executable, "-m", "modelloop", "serve", "--port", str(port), "--endpoint",
                  "lr"], env={"MODELLOOP_HOME": str(ws.root)})
    try:
        wait_up(port, "/ping", proc)
        body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": np.random.default_rng(
            0).normal(size=(1, 20)).round(5).tolist()}}).encode()
        return capture_cost(ws, port, body, seconds, rounds, pid=proc.pid)
    finally:
        stop(proc)
        ws.close()


def save_floor(ws, ref: str, path: Path) -> None:
    from modelloop.registry.package import read_manifest

    pkg = ws.models.package_dir(ref)
    info = read_manifest(pkg).flavor_info
    path.write_text(FLOOR_APP.format(path=str(pkg / info["file"]),
                                     trusted=info["trusted_types"]))


# -- a model trained with its preprocessing ----------------------------------------------------
PIPELINE_FLOOR_GOAL = 0.7  # the trained pipeline's 1-row req/s over the bare model's floor
PIPELINE_MLFLOW_GOAL = 10.0  # ... over `mlflow models serve` with the same fitted pipeline


def pipeline_frame(n: int = 5000, seed: int = 0):
    """Numeric columns (some missing), a low-cardinality text column (one-hot), a
    high-cardinality one (ordinal) and a binary target: what ``modelloop train`` preprocesses."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"n{i}": rng.normal(i, 1.0 + i, n).round(4) for i in range(6)})
    frame["age"] = rng.integers(18, 80, n)
    frame["plan"] = rng.choice(["basic", "plus", "pro", "max"], n)
    frame["region"] = rng.choice([f"region-{i:02d}" for i in range(40)], n)
    frame["channel"] = rng.choice(["web", "app", "store"], n)
    frame.loc[rng.random(n) < 0.08, "n1"] = np.nan
    frame.loc[rng.random(n) < 0.05, "plan"] = None
    score = (frame["n0"] - frame["n2"] / 3 + (frame["plan"] == "pro") * 1.5
             + (frame["age"] - 50) / 20 + rng.normal(0, 1, n))
    frame["y"] = (score > 0).astype(int)
    return frame


def _pipeline_bodies(frame, features: list[str]) -> tuple[bytes, bytes]:
    """(one typical row, 200 rows with missing values and unseen categories) as
    ``dataframe_split`` bodies (null for missing)."""
    rows = frame[features].sample(200, random_state=1).astype(object)
    rows = rows.where(rows.notna(), None).values.tolist()
    for i in range(0, 200, 7):
        rows[i][features.index("region")] = "region-unseen"
    for i in range(3, 200, 11):
        rows[i][features.index("plan")] = None
    one = json.dumps({"dataframe_split": {"columns": features, "data": [rows[0]]}}).encode()
    many = json.dumps({"dataframe_split": {"columns": features, "data": rows}}).encode()
    return one, many


def _log_mlflow_pipeline(pipeline, frame, features: list[str], folder: Path) -> Path:
    """The fitted pipeline logged as a user would (``mlflow.sklearn.log_model``, its default
    skops format trusting the pipeline's own types), downloaded to a local folder to serve."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    exp = mlflow.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    trusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    with mlflow.start_run(experiment_id=exp), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hint on integer columns: requests send no nulls
        info = mlflow.sklearn.log_model(
            pipeline, name="model", signature=infer_signature(frame[features]),
            skops_trusted_types=trusted)
    return Path(mlflow.artifacts.download_artifacts(info.model_uri,
                                                    dst_path=str(folder / "served")))


def _predictions(port: int, path: str, body: bytes) -> list:
    import httpx

    r = httpx.post(f"http://127.0.0.1:{port}{path}", content=body, timeout=60,
                   headers={"content-type": "application/json"})
    r.raise_for_status()
    return r.json()["predictions"]


def pipeline_serving(seconds: float, rounds: int = 3, with_mlflow: bool = True) -> dict:
    """A model trained by ``modelloop train`` (imputation, scaling, one-hot and ordinal
    encoding, logistic regression) served by modelloop, next to a bare LogisticRegression
    (20 float features) served by modelloop and by the bare Starlette floor, and to
    ``mlflow models serve`` with the same fitted pipeline logged by ``mlflow.sklearn.log_model``.

    The same server also serves the same fitted pipeline packaged without its plan (the plain
    path, as before the fast path). One worker each; 1-row ``dataframe_split`` bodies at
    concurrency 1, the servers measured in
    turns ``rounds`` times (median req/s). Before timing, modelloop's and MLflow's predictions
    of 200 rows (missing values, unseen categories) are checked equal, and modelloop's against
    the pipeline's own ``predict``.
    """
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from modelloop import Workspace
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    ws = Workspace.init(tmp / "ws")
    frame = pipeline_frame()
    frame.to_csv(tmp / "customers.csv", index=False)
    ws.datasets.ingest("customers", [tmp / "customers.csv"])
    job = ws.training.train("customers", "y", "logistic_regression")
    trained = ws.models.register_from_job("trained", job["id"])
    ws.models.approve(trained["ref"], reason="benchmark")
    ws.endpoints.create("trained", trained["ref"])
    loaded = ws.models.load(trained["ref"])
    features = loaded.signature.names
    path = loaded.fast_path
    print(f"trained pipeline ({len(features)} columns: {', '.join(features)}); serving path: "
          f"{path['path']}" + (f" ({path['reason']})" if path["path"] != "plan" else ""),
          flush=True)

    # the same fitted pipeline without its plan: what serving it cost before the fast path
    save_package(loaded.model, tmp / "plain", signature=loaded.signature, task="binary",
                 fast_path=False)
    plain = ws.models.register("trained-plain", tmp / "plain")["ref"]
    ws.models.approve(plain, reason="benchmark")
    ws.endpoints.create("trained-plain", plain)

    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    bare_frame = pd.DataFrame(X, columns=FEATURES)
    save_package(LogisticRegression(max_iter=500).fit(bare_frame, y), tmp / "bare",
                 signature=Signature.from_frame(bare_frame))
    bare = ws.models.register("bare", tmp / "bare")["ref"]
    ws.models.approve(bare, reason="benchmark")
    ws.endpoints.create("bare", bare)
    save_floor(ws, bare, tmp / "floor.py")

    one, many = _pipeline_bodies(frame, features)
    bare_one = json.dumps({"dataframe_split": {"columns": FEATURES, "data": np.random.default_rng(
        0).normal(size=(1, 20)).round(5).tolist()}}).encode()
    procs = {}
    p = free_port()
    procs["modelloop"] = (p, start([sys.executable, "-m", "modelloop", "serve", "--port", str(p)],
                                   env={"MODELLOOP_HOME": str(ws.root)}))
    p = free_port()
    procs["floor"] = (p, start(
        [sys.executable, "-m", "uvicorn", "floor:app", "--port", str(p), "--loop", "uvloop",
         "--http", "httptools", "--no-access-log", "--log-level", "warning"], cwd=tmp))
    if with_mlflow:
        served = _log_mlflow_pipeline(loaded.model, frame, features, tmp / "mlflow")
        p = free_port()
        procs["mlflow"] = (p, start(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(served), "-p", str(p),
             "--env-manager", "local", "-h", "127.0.0.1"]))
    try:
        for name, (port, proc) in procs.items():
            wait_up(port, "/" if name == "floor" else "/ping", proc)
        mport = procs["modelloop"][0]
        got = _predictions(mport, "/mlflow/trained/invocations", many)
        doc = json.loads(many)["dataframe_split"]
        want = loaded.model.predict(pd.DataFrame(doc["data"], columns=doc["columns"]).astype(
            {c: float for c in features if c.startswith("n")})).tolist()
        if got != want:
            raise RuntimeError("modelloop's predictions differ from the pipeline's")
        checked = "modelloop = pipeline"
        if with_mlflow:
            theirs = _predictions(procs["mlflow"][0], "/invocations", many)
            if theirs != got:
                diff = sum(a != b for a, b in zip(theirs, got, strict=True))
                raise RuntimeError(f"MLflow and modelloop differ on {diff} of {len(got)} rows")
            checked += " = MLflow"

        def at(port, route, body):
            return lambda: load(port, route, body, 1, seconds)

        if _predictions(mport, "/mlflow/trained-plain/invocations", many) != got:
            raise RuntimeError("the plain path and the plan differ")
        runs = {"trained": at(mport, "/mlflow/trained/invocations", one),
                "plain": at(mport, "/mlflow/trained-plain/invocations", one),
                "bare": at(mport, "/mlflow/bare/invocations", bare_one),
                "floor": at(procs["floor"][0], "/invocations", bare_one)}
        if with_mlflow:
            runs["mlflow"] = at(procs["mlflow"][0], "/invocations", one)
        rps = alternate(runs, rounds)
    finally:
        for _port, proc in procs.values():
            stop(proc)
        ws.close()
    out = {"rps": rps, "path": path, "checked": f"{checked} on 200 rows",
           "vs_floor": rps["trained"] / rps["floor"], "vs_bare": rps["trained"] / rps["bare"],
           "vs_mlflow": rps["trained"] / rps["mlflow"] if with_mlflow else None}
    print(f"trained pipeline, 1 row, c=1 ({out['checked']}): modelloop {rps['trained']:.0f} "
          f"req/s; bare LogisticRegression: modelloop {rps['bare']:.0f}, floor "
          f"{rps['floor']:.0f} req/s -> {out['vs_floor']:.2f}x the bare-model floor (goal >= "
          f"{PIPELINE_FLOOR_GOAL:g}x), {out['vs_bare']:.2f}x modelloop's bare model", flush=True)
    print(f"  the same pipeline without its plan (plain path): {rps['plain']:.0f} req/s -> the "
          f"plan is {rps['trained'] / rps['plain']:.1f}x faster", flush=True)
    if with_mlflow:
        print(f"  mlflow models serve, same pipeline: {rps['mlflow']:.0f} req/s -> modelloop "
              f"{out['vs_mlflow']:.1f}x (goal >= {PIPELINE_MLFLOW_GOAL:g}x)", flush=True)
    return out


def pipeline_rows(res: dict) -> list[dict]:
    """The trained-pipeline figures as benchmarks/run_all.py rows."""
    rps = res["rps"]
    note = f"{rps['trained']:.0f} vs {rps['floor']:.0f} req/s, 1 row, c=1; {res['checked']}; " \
           f"serving path {res['path']['path']}"
    rows = [{"benchmark": "serving", "figure": "trained pipeline vs bare-model floor, 1 row",
             "value": res["vs_floor"], "unit": "x", "goal": f">= {PIPELINE_FLOOR_GOAL:g}x",
             "met": res["vs_floor"] >= PIPELINE_FLOOR_GOAL, "note": note},
            {"benchmark": "serving", "figure": "trained pipeline vs modelloop's bare model, 1 row",
             "value": res["vs_bare"], "unit": "x", "goal": None, "met": None,
             "note": f"{rps['trained']:.0f} vs {rps['bare']:.0f} req/s, one server"},
            {"benchmark": "serving", "figure": "trained pipeline: plan vs plain path, 1 row",
             "value": rps["trained"] / rps["plain"], "unit": "x", "goal": None, "met": None,
             "note": f"{rps['trained']:.0f} vs {rps['plain']:.0f} req/s, one server"}]
    if res["vs_mlflow"] is not None:
        rows.append({"benchmark": "serving",
                     "figure": "trained pipeline vs mlflow models serve (same pipeline), 1 row",
                     "value": res["vs_mlflow"], "unit": "x", "goal": f">= {PIPELINE_MLFLOW_GOAL:g}x",
                     "met": res["vs_mlflow"] >= PIPELINE_MLFLOW_GOAL,
                     "note": f"{rps['trained']:.0f} vs {rps['mlflow']:.0f} req/s, c=1"})
    return rows



def run(quick: bool = True) -> list[dict]:
    """Rows for benchmarks/run_all.py: the trained pipeline's figures (2 s per point when
    ``quick``, else 10 s). The other sections add their rows here as they gain run shapes."""
    seconds = 2.0 if quick else 10.0
    rows: list[dict] = []
    for section, measure in (("trained pipeline", lambda: pipeline_rows(pipeline_serving(seconds))),
                             ("capture", lambda: capture_rows(capture_serving(seconds)))):
        try:  # one section failing still gives the others' figures
            rows += measure()
        except Exception as exc:
            import traceback

            traceback.print_exc()
            rows.append({"benchmark": "serving", "figure": f"{section}: failed", "value": None,
                         "unit": "", "goal": None, "met": None,
                         "note": f"{type(exc).__name__}: {exc}"[:300]})
    return rows

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="10 s per point instead of 2 s")
    ap.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    ap.add_argument("--no-pipeline", action="store_true",
                    help="skip the model trained with its preprocessing")
    ap.add_argument("--only-pipeline", action="store_true",
                    help="only the model trained with its preprocessing")
    args = ap.parse_args()
    seconds = 10.0 if args.full else float(os.environ.get("BENCH_SECONDS", 2.0))
    if args.only_pipeline:
        pipeline_serving(seconds, with_mlflow=not args.no_mlflow)
        return

    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from modelloop import Workspace
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    model = LogisticRegression(max_iter=500).fit(frame, y)
    ws = Workspace.init(tmp / "ws")
    save_package(model, tmp / "pkg", signature=Signature.from_frame(frame))
    ref = ws.models.register("lr", tmp / "pkg")["ref"]
    ws.models.approve(ref, reason="benchmark")  # endpoints serve approved versions
    ws.endpoints.create("lr", ref)
    ws.endpoints.create("lr-capture", ref,
                        capture={"enabled": True, "sampling": 100, "mode": "both"})
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=100, max_depth=8, n_jobs=1,
                                    random_state=0).fit(frame, y)
    save_package(forest, tmp / "rf-pkg", signature=Signature.from_frame(frame))
    rf_ref = ws.models.register("rf", tmp / "rf-pkg")["ref"]
    ws.models.approve(rf_ref, reason="benchmark")
    ws.endpoints.create("rf", rf_ref)
    save_floor(ws, ref, tmp / "floor.py")
    save_floor(ws, rf_ref, tmp / "floor_rf.py")

    servers = {}
    p = free_port()
    servers["modelloop"] = (p, "/invocations", start(
        [sys.executable, "-m", "modelloop", "serve", "--port", str(p), "--endpoint", "lr"],
        env={"MODELLOOP_HOME": str(ws.root)}))
    p = free_port()
    servers["floor"] = (p, "/invocations", start(
        [sys.executable, "-m", "uvicorn", "floor:app", "--port", str(p), "--loop", "uvloop",
         "--http", "httptools", "--no-access-log", "--log-level", "warning"], cwd=tmp))
    p = free_port()
    rf_floor = (p, start(
        [sys.executable, "-m", "uvicorn", "floor_rf:app", "--port", str(p), "--loop", "uvloop",
         "--http", "httptools", "--no-access-log", "--log-level", "warning"], cwd=tmp))
    if not args.no_mlflow:
        mlflow_dir = ws.models.export(ref, tmp / "mlflow_model", format="mlflow")
        p = free_port()
        servers["mlflow"] = (p, "/invocations", start(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(mlflow_dir), "-p",
             str(p), "--env-manager", "local", "-h", "127.0.0.1"]))
    try:
        for name, (port, _path, proc) in servers.items():
            wait_up(port, "/ping" if name != "floor" else "/", proc)
        rng = np.random.default_rng(0)
        print(f"LogisticRegression, 20 features; {seconds:g} s per point; loopback, 1 worker each")
        print(f"{'rows':>4} {'c':>3} | " + " | ".join(f"{n:>26}" for n in servers)
              + " | modelloop vs floor / vs mlflow")
        for rows in (1, 100):
            body = json.dumps({"dataframe_split": {
                "columns": FEATURES, "data": rng.normal(size=(rows, 20)).round(5).tolist()}})
            for c in (1, 8, 32):
                res = {n: load(port, path, body.encode(), c, seconds)
                       for n, (port, path, _) in servers.items()}
                cells = " | ".join(f"{r['rps']:7.0f} r/s {r['p50']:6.2f}/{r['p99']:6.1f} ms"
                                   for r in res.values())
                ratio = f"{res['modelloop']['rps'] / res['floor']['rps']:.2f}x"
                if "mlflow" in res:
                    ratio += f" / {res['modelloop']['rps'] / res['mlflow']['rps']:.1f}x"
                errs = sum(r["errors"] for r in res.values())
                print(f"{rows:>4} {c:>3} | {cells} | {ratio}" + (f"  ERRORS {errs}" if errs
                                                                   else ""))
        one = json.dumps({"dataframe_split": {
            "columns": FEATURES, "data": rng.normal(size=(1, 20)).round(5).tolist()}}).encode()
        mport = servers["modelloop"][0]

        def run(port, path, c):
            return lambda: load(port, path, one, c, seconds)

        capture_cost(ws, mport, one, seconds, pid=servers["modelloop"][2].pid)
        wait_up(rf_floor[0], "/", rf_floor[1])
        rf = alternate({"modelloop": run(mport, "/mlflow/rf/invocations", 32),
                        "floor": run(rf_floor[0], "/invocations", 32)}, rounds=2)
        print(f"micro-batching, random forest (100 trees), 1 row, c=32: modelloop "
              f"{rf['modelloop']:.0f} vs unbatched floor {rf['floor']:.0f} req/s = "
              f"{rf['modelloop'] / rf['floor']:.1f}x (goal >= 3x)")
    finally:
        for _port, _path, proc in servers.values():
            stop(proc)
        stop(rf_floor[1])
    if not args.no_pipeline:
        pipeline_serving(seconds, with_mlflow=not args.no_mlflow)


if __name__ == "__main__":
    main()
