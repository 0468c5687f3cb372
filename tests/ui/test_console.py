"""The web console in a real headless Chromium (Debian's ``chromium`` driven by Selenium through
Debian's ``chromium-driver``; nothing is downloaded): sign-in with a token, every page renders
the workspace's data, a viewer sees no approve button, an admin approves a version and the
registry's history shows it, the endpoint charts update as new traffic figures arrive, and no
page logs a JavaScript error. Screenshots of the main pages go to ``$MODELLOOP_SCREENSHOTS``
(docs/screenshots holds the committed set) or a temporary folder.

One workspace (two small datasets versions, two trained versions: cheap, SDK-built), one API
server and one browser for the module.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
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

pytestmark = pytest.mark.slow  # the workspace's two trainings import scikit-learn: ~10-25 s

from modelloop.pipelines import pipeline, step  # noqa: E402

WAIT = 20  # seconds a page may take on a loaded 2-core machine (a wait, not an assertion)


@step
def rows(n: int) -> list:
    print(f"loading {n} rows")
    return list(range(n))


@step
def total(values: list) -> int:
    return sum(values)


@step
def count(values: list) -> int:
    return len(values)


@step
def mean(s: int, n: int) -> float:
    return s / n


@pipeline
def averaged(n: int = 5):
    values = rows(n)
    mean(total(values), count(values))


def _trials(ws, parent: int) -> int:
    """A tuning job's records as the tuner writes them (a parent and its trials), without
    tuning: the console only reads them."""
    tune = ws.store.create_job(kind="tune", name="tune logistic_regression on credit@2",
                               spec={}, params={"algorithm": "logistic_regression"},
                               status="succeeded")  # fmt: skip
    for c, auc in ((0.1, 0.91), (1.0, 0.95), (10.0, 0.93)):
        trial = ws.store.create_job(kind="trial", name=f"trial C={c}", spec={}, parent_id=tune,
                                    params={"C": c}, status="succeeded")  # fmt: skip
        ws.store.update_job(trial, metrics={"roc_auc": auc, "log_loss": 1 - auc})
    return tune


def _workspace(root: Path):
    import numpy as np
    import pandas as pd

    from modelloop import Workspace

    ws = Workspace.init(root)
    rng = np.random.default_rng(0)
    for day in range(2):
        x = rng.normal(size=(120, 3)) + day * 0.3
        frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(
            y=(x[:, 0] + x[:, 1] > 0).astype(int)
        )
        frame.to_csv(root / f"day{day}.csv", index=False)
        ws.datasets.ingest("credit", [root / f"day{day}.csv"])
    for version in (1, 2):
        job = ws.training.train(f"credit@{version}", "y", "logistic_regression")
        ws.models.register_from_job("credit", job["id"])
    ws.models.approve("credit@1", reason="first")
    ws.models.set_alias("credit", "champion", "credit@1")
    ws.endpoints.create("credit-ep", "credit@champion")
    ws.tune_job = _trials(ws, 2)
    baseline = ws.monitoring.ensure_baseline("credit@1", target="y")["name"]
    ws.monitoring.create_monitor("credit-drift", baseline=baseline, dataset="credit")
    ws.alarms.create("credit-violations", "violations", threshold=0, comparison=">",
                     dimensions={"monitor": "credit-drift"})  # fmt: skip
    ws.monitoring.run("credit-drift", dataset_ref="credit@2")
    ws.loops.apply({"name": "credit", "data": {"dataset": "credit"}, "target": "y",
                    "train": {"algorithm": "logistic_regression"},
                    "deploy": {"endpoint": "credit-ep"},
                    "monitors": [{"name": "credit-loop-drift", "kind": "data_drift",
                                  "alarm": {"threshold": 0.3}}]})  # fmt: skip
    for _ in range(2):  # the second run's steps are all cache hits
        assert averaged.run(ws, {"n": 4}, executor="threads").status == "succeeded"
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

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def errors(self) -> list[dict]:
        """What the page logged at error level since the last call (JavaScript errors and
        failed requests alike)."""
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    import uvicorn
    from argon2 import PasswordHasher

    from modelloop.access import tokens as T
    from modelloop.ui.app import create_app

    ws = _workspace(tmp_path_factory.mktemp("console") / "ws")
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
    loop = c.driver.find_element(By.CSS_SELECTOR, "section.loop[data-loop=credit]").text
    assert "credit@1" in loop and "credit-v1" in loop and "100%" in loop  # champion, traffic
    assert "credit-loop-drift" in loop and "INSUFFICIENT_DATA" in loop  # monitor, alarm
    assert "model.registered" in c.text() and "credit@2" in c.text()
    c.shot("overview")
    c.open("#/registry", "#models")
    assert "champion → v1" in c.text()
    c.open("#/registry/credit", "#versions")
    c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#history"))
    assert "approved" in c.driver.find_element(By.ID, "versions").text
    c.shot("registry")
    c.open("#/registry/credit/1", "#lineage")
    assert "credit@1" in c.driver.find_element(By.ID, "lineage").text
    assert "day0.csv" in c.driver.find_element(By.ID, "lineage").text  # back to the data files
    assert "credit-ep" in c.driver.find_element(By.ID, "deployed-on").text
    c.open("#/jobs", "#jobs")
    assert "train logistic_regression on credit@2" in c.text()
    c.shot("jobs")
    c.open("#/jobs/1", "#job-evaluation")
    c.wait(lambda d: "(no log lines)" not in d.find_element(By.ID, "job-logs").text != "…")
    assert "logistic_regression" in c.driver.find_element(By.ID, "job-params").text
    assert "accuracy" in c.driver.find_element(By.ID, "job-metrics").text
    assert "model/model.json" in c.driver.find_element(By.ID, "job-artifacts").text
    c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#job-report[data-loaded]"))
    c.driver.switch_to.frame(c.driver.find_element(By.ID, "job-report"))
    assert "Plots" in c.driver.find_element(By.TAG_NAME, "body").text
    c.driver.switch_to.default_content()
    c.shot("job")
    c.open("#/datasets", "#datasets")
    c.open("#/datasets/credit", "#dataset-stats")
    assert (
        "Mean shift" in c.text() and "v2" in c.driver.find_element(By.ID, "dataset-versions").text
    )
    c.wait(lambda d: "day1.csv" in d.find_element(By.ID, "dataset-sources").text)
    c.shot("dataset")
    c.click("#compare-a option[value='1']")
    c.click("#compare-b option[value='2']")
    c.click("#compare-go")
    c.wait(lambda d: "Columns of v1 (compared with v2)" in d.find_element(By.ID, "main").text)
    c.open("#/monitoring", "#alarms, #page-monitoring p.muted")
    c.open("#/endpoints", "#endpoints")
    assert "credit-v1: credit@1 (100%)" in c.text()
    assert c.errors() == []


def test_jobs_filter_and_page_on_the_server(console):
    c = console
    for i in range(26):  # more than one page of the console's 25: cheap rows, no training
        c.ws.store.create_job(kind="evaluate", name=f"filler {i}", spec={}, params={},
                              status="succeeded")  # fmt: skip
    c.sign_in("viewer")
    c.open("#/jobs", "#jobs")
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == 25
    c.driver.find_element(By.CSS_SELECTOR, ".pager button.next").click()
    c.wait(lambda d: "credit@1" in d.find_element(By.ID, "jobs").text)  # the oldest, on page 2
    rest = len(c.ws.jobs.list(limit=None)) - 25
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == rest
    c.driver.find_element(By.CSS_SELECTOR, "#filter-kind option[value=train]").click()
    c.wait(lambda d: "filler" not in d.find_element(By.ID, "jobs").text)
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == 2
    assert c.errors() == []


def test_a_viewer_sees_no_approve_button(console):
    c = console
    c.sign_in("viewer")
    c.open("#/registry/credit", "#versions")
    assert c.driver.find_elements(By.CSS_SELECTOR, "button.approve") == []
    assert c.driver.find_elements(By.CSS_SELECTOR, "button.rollback") == []
    assert c.errors() == []


def test_an_admin_approves_a_version_and_the_history_shows_it(console):
    c = console
    c.sign_in("admin")
    c.open("#/registry/credit", "button.approve[data-ref='credit@2']").click()
    c.wait(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    c.driver.find_element(By.ID, "confirm-reason").send_keys("looks right")
    c.driver.find_element(By.ID, "confirm-ok").click()
    c.wait(lambda d: "looks right" in d.find_element(By.ID, "history").text)
    row = next(r for r in c.driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
               if "looks right" in r.text)  # fmt: skip
    assert "approved" in row.text and "v2" in row.text and "ui-admin" in row.text
    assert c.ws.models.get("credit@2")["status"] == "approved"
    assert c.driver.find_elements(By.CSS_SELECTOR, "button.approve[data-ref='credit@2']") == []
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
                answer = client.post(
                    "/endpoints/credit-ep/invocations", json=[[0.1 * i, 0.2, -0.3]]
                )
                assert answer.status_code == 200, answer.text
            time.sleep(0.1)

    with TestClient(app) as client:
        c.driver.get(c.url.replace("/ui/", "/ui/?refresh=1") + "#/endpoints/credit-ep")
        c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-rps[data-points]"))
        traffic_until(lambda: points("chart-rps") >= 2)
        first = points("chart-rps")
        traffic_until(lambda: points("chart-rps") > first)
        assert points("chart-latency") > 0
        c.wait(lambda d: "credit-v1" in d.find_element(By.ID, "endpoint-stats").text)
        c.shot("endpoint")
    assert c.errors() == []


def test_a_pipeline_run_draws_its_dag(console):
    c = console
    c.sign_in("viewer")
    c.open("#/runs", "#runs")
    assert "averaged" in c.driver.find_element(By.ID, "runs").text
    c.open("#/runs/2", "#run-dag")
    steps = c.driver.find_elements(By.CSS_SELECTOR, "#run-dag g.dag-step")
    assert sorted(s.get_attribute("data-step") for s in steps) == ["count", "mean", "rows", "total"]
    assert {s.get_attribute("data-status") for s in steps} == {"cached"}
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#run-steps .cache-hit")) == 4
    c.shot("run")
    assert c.errors() == []


def test_jobs_side_by_side_and_tuning_trials(console):
    c = console
    c.sign_in("viewer")
    c.open("#/jobs", "#jobs input.pick")
    c.driver.find_element(By.CSS_SELECTOR, "#filter-kind option[value=train]").click()
    c.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs input.pick")) == 2)
    for box in c.driver.find_elements(By.CSS_SELECTOR, "#jobs input.pick"):
        if box.get_attribute("value") in ("1", "2"):
            box.click()
    c.driver.find_element(By.ID, "compare-selected").click()
    table = c.wait(lambda d: d.find_elements(By.ID, "compare-metrics"))[0]
    assert "accuracy" in table.text and "#1" in c.text() and "#2" in c.text()
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
    assert all(column in drift for column in ("a", "b", "c")) and "ks" in drift
    assert len(c.driver.find_elements(By.CSS_SELECTOR, "#histograms figure")) == 4
    c.shot("monitoring")
    c.click("#alarms button.alarm-history")
    c.wait(lambda d: d.find_elements(By.ID, "alarm-history") or
           "No history yet." in d.find_element(By.ID, "monitoring-detail").text)  # fmt: skip
    assert "credit-violations" in c.driver.find_element(By.ID, "alarms").text
    c.click("#series button.draw-series")
    c.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#series-chart[data-points]"))
    assert int(c.driver.find_element(By.ID, "series-chart").get_attribute("data-points")) >= 1
    assert c.errors() == []


def test_an_operator_deploys_and_rolls_back_from_the_endpoint_page(console):
    c = console
    if c.ws.models.get("credit@2")["status"] != "approved":  # when run alone
        c.ws.models.approve("credit@2", reason="for the rollout")
    c.sign_in("operator")
    c.open("#/endpoints/credit-ep", "#deploy-model").send_keys("credit@2")
    c.click("#deploy-strategy option[value=canary]")
    c.click("#deploy-submit")
    c.wait(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    c.driver.find_element(By.ID, "confirm-ok").click()
    panel = c.wait(lambda d: d.find_elements(By.ID, "active-rollout"))[0]
    assert "credit@2" in panel.text
    (rollout,) = [r for r in c.ws.endpoints.rollouts("credit-ep") if r["ended_at"] is None]
    assert rollout["model"] == "credit@2" and rollout["strategy"] == "canary"
    c.click("#rollout-rollback")
    c.wait(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    c.driver.find_element(By.ID, "confirm-ok").click()
    c.wait(lambda d: d.find_elements(By.ID, "deploy"))  # no rollout under way: the form is back
    assert all(r["ended_at"] is not None for r in c.ws.endpoints.rollouts("credit-ep"))
    assert c.errors() == []
