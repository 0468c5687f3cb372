"""Console pages on a big workspace: the jobs page on 10,000 jobs, the registry's model page on
1,000 versions of one model and its models page on 1,000 models, against the same pages on a small
workspace (100 jobs, 10 versions, 10 models).

The pages fetch one page of rows (server-side pagination: ``limit``/``offset`` down to the SQL
query), so a workspace 100x bigger should load them in about the same time. Measured two ways on
the same API server (uvicorn on loopback, the console mounted, an admin token):

* api: the requests each page makes, timed from a client (httpx): the jobs page's first and
  last page of 25 and its ``kind`` filter; the models page's first 25 models; the model page's
  aliases, its first 25 versions and its newest 50 history entries; a version's page (record,
  lineage, endpoints). Goal: the big workspace's median <= 2x the small one's (it does not grow
  with the workspace). Shown beside them, without a goal: the model page as it was, when it
  listed every model (``/models?limit=1000``) to find its own aliases.
* browser (when Debian's chromium and chromium-driver are installed): the page opened in
  headless Chromium until it has drawn its table (``#jobs tbody tr``, ``#models tbody tr``,
  ``#history tbody tr``), after a warm-up load. Same goal.

Equal work, checked: both workspaces' pages show 25 rows (the first page), the big one's
last jobs page shows the oldest job, and the model page's aliases are the model's own. The seed rows are those the store writes (the same tables
and columns), inserted in one transaction each, so seeding takes a second rather than minutes.
Run: ``python benchmarks/console_pages.py [--jobs N] [--versions N] [--models N] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

GOAL = 2.0  # big / small, per page


def seed(root: Path, n_jobs: int, n_versions: int, n_models: int = 1):
    """A workspace with ``n_jobs`` jobs (a tenth of them train jobs), one model ``m`` with
    ``n_versions`` versions (every version registered and approved; champion on the newest) and
    ``n_models - 1`` other models of one approved version each (champion on it)."""
    import sqlalchemy as sa

    from modelloop import Workspace
    from modelloop.store.tables.jobs import jobs
    from modelloop.store.tables.registry import model_aliases, model_history, model_versions, models

    ws = Workspace.init(root)
    t0 = datetime.now(UTC) - timedelta(days=30)
    job_rows = [
        {"kind": "train" if i % 10 == 0 else "evaluate", "name": f"job {i}", "status": "succeeded",
         "parent_id": None, "spec": "{}", "params": json.dumps({"C": i % 7}),
         "metrics": json.dumps({"accuracy": (i % 100) / 100}), "inputs": "[]", "outputs": "{}",
         "info": "{}", "created_at": t0 + timedelta(seconds=i),
         "started_at": t0 + timedelta(seconds=i), "ended_at": t0 + timedelta(seconds=i + 1)}
        for i in range(n_jobs)
    ]  # fmt: skip
    manifest = json.dumps({"metrics": {"accuracy": 0.9, "roc_auc": 0.95}, "signature": {
        "columns": [{"name": f"x{k}", "type": "double", "required": True} for k in range(8)]}})
    with ws.store._write() as conn:  # the store's own rows, in one transaction
        conn.execute(jobs.insert(), job_rows)
        model_id = conn.execute(models.insert().values(name="m", created_at=t0)).inserted_primary_key[0]
        conn.execute(model_versions.insert(), [
            {"model_id": model_id, "version": v, "created_at": t0 + timedelta(minutes=v),
             "created_by": "bench", "status": "approved", "status_by": "bench",
             "status_at": t0 + timedelta(minutes=v), "status_reason": "seeded",
             "package_hash": f"{v:064x}", "flavor": "sklearn", "task": "binary", "job_id": None,
             "manifest": manifest, "holds_code": False}
            for v in range(1, n_versions + 1)])  # fmt: skip
        conn.execute(model_history.insert(), [
            {"model_id": model_id, "time": t0 + timedelta(minutes=v), "action": action,
             "version": v, "alias": None, "from_version": None, "actor": "bench",
             "reason": "seeded"}
            for v in range(1, n_versions + 1) for action in ("registered", "approved")])  # fmt: skip
        conn.execute(model_aliases.insert().values(model_id=model_id, alias="champion",
                                                   version=n_versions, updated_at=t0))  # fmt: skip
        if n_models > 1:  # the others, named after m (m-0001 …): m is the first by name
            conn.execute(models.insert(), [{"name": f"m-{i:04d}", "created_at": t0}
                                           for i in range(1, n_models)])  # fmt: skip
            ids = dict(conn.execute(sa.select(models.c.name, models.c.id)
                                    .where(models.c.name != "m")).all())  # fmt: skip
            conn.execute(model_versions.insert(), [
                {"model_id": i, "version": 1, "created_at": t0, "created_by": "bench",
                 "status": "approved", "status_by": "bench", "status_at": t0,
                 "status_reason": "seeded", "package_hash": f"{i:064x}", "flavor": "sklearn",
                 "task": "binary", "job_id": None, "manifest": manifest, "holds_code": False}
                for i in ids.values()])  # fmt: skip
            conn.execute(model_aliases.insert(), [
                {"model_id": i, "alias": "champion", "version": 1, "updated_at": t0}
                for i in ids.values()])  # fmt: skip
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == n_jobs
    return ws


class Server:
    """The API with the console on a loopback port, in a thread; an admin token."""

    def __init__(self, ws):
        import uvicorn

        from modelloop.ui.app import create_app

        self.token = ws.tokens.create("bench", role="admin")["token"]
        self.server = uvicorn.Server(uvicorn.Config(create_app(ws), host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="off"))  # fmt: skip
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)


#: The requests each page makes (api/v1 paths and queries), as the console's modules send them.
def page_requests(n_jobs: int, n_versions: int, n_models: int = 1
                  ) -> dict[str, list[tuple[str, dict]]]:  # fmt: skip
    last = max(0, (n_jobs - 1) // 25 * 25)
    versions = [("/models/m/versions", {"limit": 25, "offset": 0}),
                ("/models/m/history", {"newest_first": "true", "limit": 50, "offset": 0})]
    return {
        "jobs page (first 25)": [("/jobs", {"limit": 25, "offset": 0})],
        "jobs page (last)": [("/jobs", {"limit": 25, "offset": last})],
        "jobs page (kind=train)": [("/jobs", {"kind": "train", "limit": 25, "offset": 0})],
        "models page (first 25)": [("/models", {"limit": 25, "offset": 0})],
        "model page": [("/models/m/aliases", {}), *versions],
        "model page as it was (all models)": [("/models", {"limit": 1000}), *versions],
        "version page": [(f"/models/m@{n_versions}", {}), (f"/models/m@{n_versions}/lineage", {}),
                         (f"/models/m@{n_versions}/endpoints", {})],
    }  # fmt: skip


def time_api(servers: dict[str, Server], requests: dict[str, dict], repeats: int
             ) -> tuple[dict[str, dict[str, float]], dict]:  # fmt: skip
    """Median seconds per page (its requests one after another) on each server, the servers
    interleaved (a load change hits them alike), after a warm-up; and what the first request of
    each page answered (checked for equal work)."""
    import httpx

    clients = {label: httpx.Client(base_url=srv.url + "/api/v1",
                                   headers={"Authorization": f"Bearer {srv.token}"})
               for label, srv in servers.items()}  # fmt: skip
    out: dict = {label: {} for label in servers}
    answers: dict = {label: {} for label in servers}
    try:
        for name in requests[next(iter(servers))]:
            times: dict = {label: [] for label in servers}
            for i in range(repeats + 1):
                for label, client in clients.items():
                    calls = requests[label][name]
                    t = time.perf_counter()
                    for path, query in calls:
                        client.get(path, params=query).raise_for_status()
                    if i:  # the first is the warm-up
                        times[label].append(time.perf_counter() - t)
                    else:
                        answers[label][name] = client.get(calls[0][0], params=calls[0][1]).json()
            for label in servers:
                out[label][name] = statistics.median(times[label])
    finally:
        for client in clients.values():
            client.close()
    return out, answers


def browser():
    """Headless Debian chromium, or None when it is not installed."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


BROWSER_PAGES = {"jobs page": ("#/jobs", "#jobs tbody tr"),
                 "models page": ("#/registry", "#models tbody tr"),
                 "model page": ("#/registry/m", "#history tbody tr")}  # fmt: skip
#: Figures shown for comparison, without a goal: what the console no longer does.
NO_GOAL = ("model page as it was (all models)",)


def time_browser(driver, servers: dict[str, Server], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds from navigating to a page until it has drawn its table, on each server in
    turn (interleaved), after a warm-up load."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for server in servers.values():  # each origin's tab storage holds its token
        driver.get(server.url + "/ui/session")
        driver.execute_script("sessionStorage.setItem('modelloop.token', arguments[0])",
                              server.token)  # fmt: skip
    out: dict = {label: {} for label in servers}
    for name, (hash_, ready) in BROWSER_PAGES.items():
        times: dict = {label: [] for label in servers}
        for i in range(repeats + 1):
            for label, server in servers.items():
                driver.get("about:blank")  # leave the page: the next load is a full one
                t = time.perf_counter()
                driver.get(f"{server.url}/ui/{hash_}")
                WebDriverWait(driver, 60).until(
                    lambda d, r=ready: d.find_elements(By.CSS_SELECTOR, r))
                if i:  # the first is the warm-up
                    times[label].append(time.perf_counter() - t)
        for label in servers:
            out[label][name] = statistics.median(times[label])
    return out


def measure(n_jobs: int, n_versions: int, repeats: int, n_models: int = 1000) -> dict:
    sizes = {"small": (max(25, n_jobs // 100), max(1, n_versions // 100), max(1, n_models // 100)),
             "big": (n_jobs, n_versions, n_models)}  # fmt: skip
    res: dict = {"sizes": sizes, "api": {}, "browser": {}, "checks": {}, "seed_seconds": {}}
    driver = browser()
    workspaces, servers = {}, {}
    try:
        with tempfile.TemporaryDirectory(prefix="modelloop-console-bench-") as tmp:
            for label, (jobs_n, versions_n, models_n) in sizes.items():
                t = time.perf_counter()
                workspaces[label] = seed(Path(tmp) / label, jobs_n, versions_n, models_n)
                res["seed_seconds"][label] = time.perf_counter() - t
                servers[label] = Server(workspaces[label])
            requests = {label: page_requests(*sizes[label]) for label in sizes}
            res["api"], answers = time_api(servers, requests, repeats)
            for label, got in answers.items():
                res["checks"][label] = {
                    "first page rows": len(got["jobs page (first 25)"]),
                    "last page has the oldest job": any(
                        j["name"] == "job 0" for j in got["jobs page (last)"]),
                    "models page rows": len(got["models page (first 25)"]),
                    "model page aliases": got["model page"],
                }  # fmt: skip
            if driver is not None:
                res["browser"] = time_browser(driver, servers, repeats)
            for server in servers.values():
                server.close()
            for ws in workspaces.values():
                ws.close()
    finally:
        if driver is not None:
            driver.quit()
    return res


def rows_of(res: dict) -> list[dict]:
    rows = []
    big_jobs, big_versions, big_models = res["sizes"]["big"]
    for how in ("api", "browser"):
        if not res[how]:
            continue
        for page, big in res[how]["big"].items():
            small = res[how]["small"][page]
            ratio = big / small if small else float("inf")
            rows.append({"benchmark": "console_pages",
                         "figure": f"{how}: {page} ({big_jobs} jobs, {big_versions} versions, "
                                   f"{big_models} models)",
                         "value": round(big * 1000, 1), "unit": "ms", "goal": None, "met": None})
            rows.append({"benchmark": "console_pages",
                         "figure": f"{how}: {page}, big / small workspace",
                         "value": round(ratio, 2), "unit": "x",
                         "goal": None if page in NO_GOAL else f"<= {GOAL:g}x",
                         "met": None if page in NO_GOAL else ratio <= GOAL})  # fmt: skip
    return rows


def print_table(res: dict, rows: list[dict]) -> None:
    print(f"workspaces: small {res['sizes']['small']}, big {res['sizes']['big']} (jobs, versions,"
          " models);"
          f" seeded in {', '.join(f'{k} {v:.1f} s' for k, v in res['seed_seconds'].items())}")
    if not res["browser"]:
        print("browser: skipped (needs Debian's chromium and chromium-driver, and selenium)")
    for r in rows:
        goal = f"  goal {r['goal']}: {'met' if r['met'] else 'NOT met'}" if r["goal"] else ""
        print(f"  {r['figure']:<62} {r['value']:>9} {r['unit']}{goal}")
    for label, checks in res["checks"].items():
        print(f"  {label}: {checks}")


def _agreed(res: dict) -> bool:
    return all(c["first page rows"] == 25 and c["last page has the oldest job"]
               and c["models page rows"] == min(25, res["sizes"][label][2])
               and c["model page aliases"] == {"champion": res["sizes"][label][1]}
               for label, c in res["checks"].items())  # fmt: skip


def run(quick: bool = True) -> list[dict]:
    """For benchmarks/run_all.py: 10,000 jobs, 1,000 versions and 1,000 models, 5 repeats
    (about a minute)."""
    res = measure(10_000, 1_000, 5 if quick else 15, 1_000)
    rows = rows_of(res)
    print_table(res, rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=1_000)
    parser.add_argument("--models", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    res = measure(args.jobs, args.versions, args.repeats, args.models)
    rows = rows_of(res)
    print_table(res, rows)
    if not _agreed(res):
        print("the pages did not show what they should: the figures compare unequal work")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
