"""The web console in a real headless Chromium (Debian's ``chromium`` driven by Selenium through
Debian's ``chromium-driver``; nothing is downloaded) on a workspace that ran the demo: sign-in
with a token, every page renders the workspace's data (the loop's runs, triggers, gate verdicts,
promotions and rollbacks; a version's lineage graph; quarantined rows; two dataset versions'
drift with histograms), a viewer sees no approve button, an admin approves a version and the
registry's history shows it, the endpoint charts update as new traffic figures arrive, and no
page logs a JavaScript error. Screenshots of the main pages go to ``$MODELLOOP_SCREENSHOTS``
(docs/screenshots holds the committed set) or a temporary folder.

The demo's workspace is built once per test session (``demo_workspace`` in tests/conftest.py:
tests/test_demo.py reads its story); this module changes a copy of it. One API server and one
browser for the module.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("selenium")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium "
                "chromium-driver)", allow_module_level=True)  # fmt: skip

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow  # the demo's workspace (shared with tests/test_demo.py): ~25 s

WAIT = 20  # seconds a page may take on a loaded 2-core machine (a wait, not an assertion)


def _trials(ws) -> int:
    """A tuning job's records as the tuner writes them (a parent and its trials), without
    tuning: the console only reads them."""
    tune = ws.store.create_job(kind="tune", name="tune logistic_regression on loans@3",
                               spec={}, params={"algorithm": "logistic_regression"},
                               status="succeeded")  # fmt: skip
    for c, auc in ((0.1, 0.91), (1.0, 0.95), (10.0, 0.93)):
        trial = ws.store.create_job(kind="trial", name=f"trial C={c}", spec={}, parent_id=tune,
                                    params={"C": c}, status="succeeded")  # fmt: skip
        ws.store.update_job(trial, metrics={"roc_auc": auc, "log_loss": 1 - auc})
    return tune


def _workspace(demo, root: Path):
    """A copy of the demo's workspace, plus what the demo does not do (each cheap, no
    training): a version waiting for approval (the newest training registered again), a
    rollback of the champion and its promotion back, rows quarantined by an ingest, the
    records of a tuning job, a loop run whose gate fails."""
    from modelloop import Workspace

    ws = Workspace(demo.copy(root))
    newest = max(j["id"] for j in ws.jobs.list(limit=None) if j["kind"] == "train")
    ws.models.register_from_job("loans", newest)  # loans@3, pending
    ws.models.rollback("loans", "champion", reason="checking the console")
    ws.models.set_alias("loans", "champion", "loans@2", reason="back to the loop's champion")
    for day, text in enumerate(("a,b,c\n1,2,x\n3,4,y\n", "a,b,c\n5,6,z\n7\n8,9,w,10\n11,12,v\n13,14,u\n")):
        (root / f"intake{day}.csv").write_text(text)
        ws.datasets.ingest("intake", [root / f"intake{day}.csv"])
    ws.tune_job = _trials(ws)
    # the loop run by hand once more: the same data, so its training is a cache hit and the
    # gate fails (the candidate is the champion); the demo's own third run depends on timing
    ws.triggers.fire("retrain-now")
    ws.triggers.run_pending(datetime.now(UTC), wait=True)
    ws.last_run = max(r["id"] for r in ws.loops.status("loans")["runs"])
    return ws


class Console:
    """The server, its tokens, the browser and where screenshots go."""

    def __init__(self, ws, url: str, tokens: dict, driver, shots: Path):
        self.ws, self.url, self.tokens, self.driver, self.shots = ws, url, tokens, driver, shots

    def sign_in(self, role: str) -> None:
        d = self.driver
        d.get(self.url + "session")  # the origin, without the console's script running
        d.execute_script("sessionStorage.clear()")
        d.get(self.url + "#/overview")
        self.wait(lambda d: d.find_elements(By.ID, "token"))
        d.find_element(By.ID, "token").send_keys(self.tokens[role])
        d.find_element(By.ID, "signin-submit").click()
        self.wait(lambda d: d.find_elements(By.ID, "who-role"))
        assert d.find_element(By.ID, "who-role").text == role

    def open(self, hash_: str, ready: str):
        """Go to ``#/...`` and wait until the CSS selector ``ready`` matches."""
        self.driver.get(f"{self.url}{hash_}")
        return self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ready))[0]

    def click(self, css: str) -> None:
        """Click the element ``css`` matches, scrolled to the middle (not under the header)."""
        element = self.driver.find_element(By.CSS_SELECTOR, css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def wait(self, condition, timeout: float = WAIT):
        """Wait for ``condition`` (pages redraw: an element found may be replaced meanwhile)."""
        return WebDriverWait(self.driver, timeout,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)  # fmt: skip

    def text(self) -> str:
        return self.driver.find_element(By.ID, "main").text

    def shot(self, name: str, at: str | None = None) -> None:
        """Save the window as ``name``.png, scrolled to the element ``at`` (CSS) if given."""
        if at:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});"
                                       "window.scrollBy(0, -70)",
                                       self.driver.find_element(By.CSS_SELECTOR, at))  # fmt: skip
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def errors(self) -> list[dict]:
        """What the page logged at error level since the last call (JavaScript errors and
        failed requests alike)."""
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def console(demo_workspace, tmp_path_factory):
    import uvicorn
    from argon2 import PasswordHasher

    from modelloop.access import tokens as T
    from modelloop.ui.app import create_app

    ws = _workspace(demo_workspace, tmp_path_factory.mktemp("console") / "ws")
    with pytest.MonkeyPatch.context() as m:  # light hashes: this module is about the browser
        m.setattr(T, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        tokens = {role: ws.tokens.create(f"ui-{role}", role=role)["token"]
                  for role in ("viewer", "operator", "admin")}  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(create_app(ws), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    shots = Path(os.environ.get("MODELLOOP_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Console(ws, f"http://127.0.0.1:{port}/ui/", tokens, driver, shots)
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=30)
        ws.close()


def test_the_console_is_served_with_the_api(console):
    import httpx

    base = console.url.removesuffix("/ui/")
    page = httpx.get(console.url)
    assert page.status_code == 200 and '<script type="module" src="js/main.js">' in page.text
    assert (
        httpx.get(base + "/ui/js/pages/registry.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert httpx.get(base + "/ui/session").json()["role"] is None  # no token: the sign-in page
    assert (
        httpx.get(base + "/ui/session", headers={"Authorization": "Bearer ml_1_nope"}).status_code
        == 401
    )
    who = httpx.get(
        base + "/ui/session", headers={"Authorization": f"Bearer {console.tokens['viewer']}"}
    )
    assert who.json()["role"] == "viewer"
    assert httpx.get(base + "/", follow_redirects=False).headers["location"] == "/ui/"


def test_every_page_renders_its_data(console):
    c = console
    c.sign_in("admin")
    c.open("#/overview", "#events li")
    loop = c.driver.find_element(By.CSS_SELECTOR, "section.loop[data-loop=loans]").text
    assert "loans@2" in loop and "loans-v2" in loop and "100%" in loop  # champion, traffic
    assert "loans-drift" in loop and "ALARM" in loop  # monitors, alarms
    # the loop's runs (by hand, by the drift alarm, maybe by the quality alarm, by hand), its
    # triggers
    rows = lambda css: c.driver.find_elements(By.CSS_SELECTOR, css)  # noqa: E731
    runs = len(c.ws.loops.status("loans")["runs"])
    assert runs >= 3 and len(rows("#runs-loans tbody tr")) == runs
    assert "retrain-on-drift" in c.driver.find_element(By.ID, "runs-loans").text
    assert {"incoming", "retrain-on-drift"} <= {r.text.split()[0] for r in
                                                  rows("#triggers-loans tbody tr")}  # fmt: skip
    # the timeline: each run with the gate's verdict, promotions, the rollback
    c.wait(lambda d: rows("#timeline-loans li[data-kind=gate]"))
    assert len(rows("#timeline-loans li[data-kind=run]")) == runs
    verdicts = [li.get_attribute("data-verdict") for li in rows("#timeline-loans li[data-kind=gate]")]
    assert len(verdicts) == runs and verdicts[0] == "failed" and verdicts.count("passed") >= 2
    assert len(rows("#timeline-loans li[data-kind=promotion]")) >= 3
    assert "checking the console" in rows("#timeline-loans li[data-kind=rollback]")[0].text
    assert rows("#timeline-loans li[data-kind=alarm]") and rows("#timeline-loans li[data-kind=rollout]")
    assert "model.registered" in c.text()
    c.shot("overview")
    c.open("#/registry", "#models")
    assert "champion → v2" in c.text()
    c.open("#/registry/loans", "#versions")
    c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#history"))
    assert "approved" in c.driver.find_element(By.ID, "versions").text
    c.shot("registry")
    c.open("#/registry/loans/2", "#lineage-graph")
    graph = c.driver.find_element(By.ID, "lineage-graph")
    kinds = [g.get_attribute("data-kind") for g in graph.find_elements(By.CSS_SELECTOR, "g.node")]
    assert kinds == ["file", "dataset", "job", "version", "endpoint"], kinds
    assert int(graph.get_attribute("data-edges")) == 4
    assert "loans-2026-01-03.csv" in graph.text and "loans@2..3" in graph.text  # the data files
    assert "loans" in c.driver.find_element(By.ID, "deployed-on").text
    c.shot("version", at="#lineage-graph")
    c.open("#/jobs", "#jobs")
    assert "loop train hist_gradient_boosting on loans@3" in c.text()
    c.shot("jobs")
    c.open("#/jobs/1", "#job-evaluation")
    c.wait(lambda d: "(no log lines)" not in d.find_element(By.ID, "job-logs").text != "…")
    assert "hist_gradient_boosting" in c.driver.find_element(By.ID, "job-params").text
    assert "accuracy" in c.driver.find_element(By.ID, "job-metrics").text
    assert "model/model.json" in c.driver.find_element(By.ID, "job-artifacts").text
    c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#job-report[data-loaded]"))
    c.driver.switch_to.frame(c.driver.find_element(By.ID, "job-report"))
    assert "Plots" in c.driver.find_element(By.TAG_NAME, "body").text
    c.driver.switch_to.default_content()
    c.shot("job")
    c.open("#/datasets", "#datasets")
    # the drifted day's version against the day before: the drift table, a histogram a column
    c.open("#/datasets/loans", "#dataset-drift")
    assert "Mean shift" in c.text() and "v3" in c.driver.find_element(By.ID, "dataset-versions").text
    drift = c.driver.find_element(By.ID, "dataset-drift")
    assert "salary" in drift.text and "wasserstein" in drift.text
    assert drift.find_elements(By.CSS_SELECTOR, "span.badge[data-status=drift]")
    assert len(drift.find_elements(By.CSS_SELECTOR, "figure")) == len(
        drift.find_elements(By.CSS_SELECTOR, "tbody tr")) >= 9  # fmt: skip
    c.wait(lambda d: "loans-2026-01-03.csv" in d.find_element(By.ID, "dataset-sources").text)
    assert "No rows quarantined." in c.text()
    c.shot("dataset", at="#compare-versions")
    c.click("#compare-a option[value='1']")
    c.click("#compare-b option[value='2']")
    c.click("#compare-go")
    c.wait(lambda d: "Columns of v1 (compared with v2)" in d.find_element(By.ID, "main").text)
    c.wait(lambda d: d.find_elements(By.ID, "dataset-drift"))
    # rows an ingest refused: their reasons and the rows as they were
    c.open("#/datasets/intake", "#dataset-quarantine")
    quarantined = c.driver.find_element(By.ID, "dataset-quarantine").text
    assert "expected 3 fields, got 1" in quarantined and "8,9,w,10" in quarantined
    assert "intake1.csv" in quarantined
    c.shot("quarantine", at="#dataset-quarantine")
    c.open("#/monitoring", "#alarms, #page-monitoring p.muted")
    c.open("#/endpoints", "#endpoints")
    assert "loans-v2: loans@2 (100%)" in c.text()
    assert c.errors() == []


def test_jobs_filter_and_page_on_the_server(console):
    c = console
    # between one and two pages of the console's 25 (the demo ran a number of monitor jobs that
    # depends on timing): cheap rows, no training
    for i in range(max(0, 40 - len(c.ws.jobs.list(limit=None)))):
        c.ws.store.create_job(kind="evaluate", name=f"filler {i}", spec={}, params={},
                              status="succeeded")  # fmt: skip
    total = len(c.ws.jobs.list(limit=None))
    c.sign_in("viewer")
    c.open("#/jobs", "#jobs")
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == 25
    c.driver.find_element(By.CSS_SELECTOR, ".pager button.next").click()
    if total <= 50:
        c.wait(lambda d: "loans@1" in d.find_element(By.ID, "jobs").text)  # the oldest, page 2
    else:
        c.wait(lambda d: "26–50" in d.find_element(By.CSS_SELECTOR, ".pager .range").text)
    rows = c.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    assert len(rows) == min(25, total - 25)
    c.driver.find_element(By.CSS_SELECTOR, "#filter-kind option[value=train]").click()
    c.wait(lambda d: all("loop train" in r.text for r in
                         d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")))  # fmt: skip
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == 2
    assert c.errors() == []


def test_a_viewer_sees_no_approve_button(console):
    c = console
    c.sign_in("viewer")
    c.open("#/registry/loans", "#versions")
    assert "pending" in c.driver.find_element(By.ID, "versions").text  # loans@3
    assert c.driver.find_elements(By.CSS_SELECTOR, "button.approve") == []
    assert c.driver.find_elements(By.CSS_SELECTOR, "button.rollback") == []
    assert c.errors() == []


def test_an_admin_approves_a_version_and_the_history_shows_it(console):
    c = console
    c.sign_in("admin")
    c.open("#/registry/loans", "button.approve[data-ref='loans@3']").click()
    c.wait(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    c.driver.find_element(By.ID, "confirm-reason").send_keys("looks right")
    c.driver.find_element(By.ID, "confirm-ok").click()
    c.wait(lambda d: "looks right" in d.find_element(By.ID, "history").text)
    row = next(r for r in c.driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
               if "looks right" in r.text)  # fmt: skip
    assert "approved" in row.text and "v3" in row.text and "ui-admin" in row.text
    assert c.ws.models.get("loans@3")["status"] == "approved"
    assert c.driver.find_elements(By.CSS_SELECTOR, "button.approve[data-ref='loans@3']") == []
    audit = c.ws.audit.list(action="models.approve")
    assert any(a["actor"] == "ui-admin" and a["outcome"] == "ok" for a in audit)
    assert c.errors() == []


def test_the_endpoint_charts_update_while_traffic_flows(console):
    """Real requests to the endpoint server (the data plane writes its ``endpoint.*`` series
    every half second here): the open page draws them, and the next ones as they come, with no
    reload."""
    from fastapi.testclient import TestClient

    c = console
    c.sign_in("operator")
    app = c.ws.endpoints.server_app(poll_seconds=0.1, metrics_seconds=0.5)
    columns = [col["name"] for col in c.ws.models.get("loans@2")["manifest"]["signature"]["columns"]]
    rows = [list(r.values()) for r in c.ws.datasets.head("loans@3", 10, columns=columns).to_pylist()]

    def points(chart: str) -> int:
        found = c.driver.execute_script(
            f"return document.getElementById('{chart}')?.dataset.points"
        )
        return int(found or 0)  # read in one step: the page redraws the chart every second

    def traffic_until(condition) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, "the charts did not update"
            for i in range(10):
                answer = client.post("/endpoints/loans/invocations", json=[rows[i]])
                assert answer.status_code == 200, answer.text
            time.sleep(0.1)

    with TestClient(app) as client:
        c.driver.get(c.url.replace("/ui/", "/ui/?refresh=1") + "#/endpoints/loans")
        c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-rps[data-points]"))
        traffic_until(lambda: points("chart-rps") >= 2)
        first = points("chart-rps")
        traffic_until(lambda: points("chart-rps") > first)
        assert points("chart-latency") > 0
        c.wait(lambda d: "loans-v2" in d.find_element(By.ID, "endpoint-stats").text)
        c.shot("endpoint")
    assert c.errors() == []


def test_a_pipeline_run_draws_its_dag(console):
    c = console
    c.sign_in("viewer")
    c.open("#/runs", "#runs")
    assert "loop-loans" in c.driver.find_element(By.ID, "runs").text
    c.open(f"#/runs/{c.ws.last_run}", "#run-dag")  # run by hand on the same data: a cache hit
    steps = {s.get_attribute("data-step"): s.get_attribute("data-status")
             for s in c.driver.find_elements(By.CSS_SELECTOR, "#run-dag g.dag-step")}  # fmt: skip
    assert sorted(steps) == sorted(["ingest", "champion", "validate", "train", "evaluate",
                                    "register", "promote", "deploy"])  # fmt: skip
    assert steps["train"] == "cached" and steps["ingest"] == "succeeded"
    assert steps["register"] == "skipped"  # the gate failed: the same model as the champion
    hits = [s for s, status in steps.items() if status == "cached"]
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#run-steps .cache-hit")) == len(hits)
    c.shot("run")
    assert c.errors() == []


def test_jobs_side_by_side_and_tuning_trials(console):
    c = console
    c.sign_in("viewer")
    c.open("#/jobs", "#jobs input.pick")
    c.driver.find_element(By.CSS_SELECTOR, "#filter-kind option[value=train]").click()
    c.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs input.pick")) == 2)
    ids = []
    for box in c.driver.find_elements(By.CSS_SELECTOR, "#jobs input.pick"):
        ids.append(box.get_attribute("value"))
        box.click()
    c.driver.find_element(By.ID, "compare-selected").click()
    table = c.wait(lambda d: d.find_elements(By.ID, "compare-metrics"))[0]
    assert "accuracy" in table.text and all(f"#{i}" in c.text() for i in ids)
    c.open(f"#/jobs/{c.ws.tune_job}", "#job-trials figure")
    figure = c.driver.find_element(By.CSS_SELECTOR, "#job-trials figure")
    assert figure.get_attribute("data-points") == "3"
    assert "trial C=10.0" in c.driver.find_element(By.ID, "job-trials").text
    assert c.errors() == []


def test_monitoring_shows_a_run_report_alarms_and_series(console):
    c = console
    c.sign_in("viewer")
    c.open("#/monitoring", "#monitor-runs button.show-report").click()
    c.wait(lambda d: d.find_elements(By.ID, "drift-table"))
    drift = c.driver.find_element(By.ID, "drift-table").text
    assert all(column in drift for column in ("salary", "hvalue", "loan"))
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#histograms figure")) >= 9
    c.shot("monitoring")
    c.click("#alarms button.alarm-history")
    c.wait(lambda d: d.find_elements(By.ID, "alarm-history") or
           "No history yet." in d.find_element(By.ID, "monitoring-detail").text)  # fmt: skip
    assert "loans-drift" in c.driver.find_element(By.ID, "alarms").text
    c.click("#series button.draw-series")
    c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#series-chart[data-points]"))
    assert int(c.driver.find_element(By.ID, "series-chart").get_attribute("data-points")) >= 1
    assert c.errors() == []


def test_an_operator_deploys_and_rolls_back_from_the_endpoint_page(console):
    c = console
    if c.ws.models.get("loans@3")["status"] != "approved":  # when run alone
        c.ws.models.approve("loans@3", reason="for the rollout")
    c.sign_in("operator")
    c.open("#/endpoints/loans", "#deploy-model").send_keys("loans@3")
    c.click("#deploy-strategy option[value=canary]")
    c.click("#deploy-submit")
    c.wait(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    c.driver.find_element(By.ID, "confirm-ok").click()
    panel = c.wait(lambda d: d.find_elements(By.ID, "active-rollout"))[0]
    assert "loans@3" in panel.text
    (rollout,) = [r for r in c.ws.endpoints.rollouts("loans") if r["ended_at"] is None]
    assert rollout["model"] == "loans@3" and rollout["strategy"] == "canary"
    c.click("#rollout-rollback")
    c.wait(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    c.driver.find_element(By.ID, "confirm-ok").click()
    c.wait(lambda d: d.find_elements(By.ID, "deploy"))  # no rollout under way: the form is back
    assert all(r["ended_at"] is not None for r in c.ws.endpoints.rollouts("loans"))
    assert c.errors() == []
