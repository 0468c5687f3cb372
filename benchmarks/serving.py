"""Real-time serving: modelloop vs `mlflow models serve` vs a bare Starlette floor.

The same scikit-learn LogisticRegression (20 features) is served three ways on loopback and driven
by the same closed-loop keep-alive load generator at concurrency 1, 8 and 32, with 1-row and 100-row
`dataframe_split` JSON bodies. Prints req/s, p50 and p99 per point and modelloop's ratios.

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
            raise RuntimeError(f"server exited (log: {proc.stderr.name})")
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def start(cmd, env=None, cwd=None):
    log = tempfile.NamedTemporaryFile(prefix="bench-serving-", suffix=".log", delete=False)  # noqa: SIM115 - the server writes it after we return
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


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


def capture_cost(ws, port: int, body: bytes, seconds: float, rounds: int = 3) -> dict:
    """The cost of capturing 100% of requests (input and output) and the records it dropped.

    The same single-row request to two endpoints of one server over the same model, one
    capturing every request and one not, at concurrency 8, alternating ``rounds`` times (so
    drift on a shared machine hits both); the cost is 1 - median req/s with / without. Every
    request the capturing endpoint answered (warm-ups included) must be in the capture store
    afterwards: the records dropped are answered - captured (goal: 0).
    """
    before = sum(f["records"] for f in ws.store.list_capture_files("lr-capture"))
    seen: dict[str, list[float]] = {"off": [], "on": []}
    answered = 0
    for _ in range(rounds):
        for name, path in (("off", "/mlflow/lr/invocations"),
                           ("on", "/mlflow/lr-capture/invocations")):
            res = _counted_load(port, path, body, 8, seconds)
            if res["errors"]:
                raise RuntimeError(f"capture {name}: {res['errors']} failed requests")
            seen[name].append(res["rps"])
            if name == "on":
                answered += res["answered"]
    import statistics

    on, off = statistics.median(seen["on"]), statistics.median(seen["off"])
    captured = captured_records(ws, "lr-capture", before + answered) - before
    cost = (1 - on / off) * 100
    out = {"on": on, "off": off, "cost": cost, "answered": answered, "captured": captured,
           "dropped": answered - captured}
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
    ]


def save_floor(ws, ref: str, path: Path) -> None:
    from modelloop.registry.package import read_manifest

    pkg = ws.models.package_dir(ref)
    info = read_manifest(pkg).flavor_info
    path.write_text(FLOOR_APP.format(path=str(pkg / info["file"]),
                                     trusted=info["trusted_types"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="10 s per point instead of 2 s")
    ap.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    args = ap.parse_args()
    seconds = 10.0 if args.full else float(os.environ.get("BENCH_SECONDS", 2.0))

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

        capture_cost(ws, mport, one, seconds)
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


if __name__ == "__main__":
    main()
