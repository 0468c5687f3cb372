"""Shared fixtures: workspaces on every backend pair the suite must cover.

PostgreSQL and the S3-compatible server are real servers started by ``scripts/test.sh`` (the
README's test command), announced through MODELLOOP_TEST_POSTGRES_URL and
MODELLOOP_TEST_S3_ENDPOINT. Without them the backend's tests are skipped locally — and fail in CI,
where skipping would hide a broken backend.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Tests run in parallel (xdist, several per core): one OpenMP thread per process, or the
# HistGradientBoosting fits of four workers (and their CLI subprocesses) spin-wait on each
# other's cores and a seconds-long fit takes minutes. The same for NumPy's OpenBLAS, whose
# threads are its own (not OpenMP's). Set before scikit-learn is imported; subprocesses inherit
# it. A user's own setting wins.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

#: The suite's own job kinds (sleep, fail: tests/job_kinds.py), found by every process it starts.
os.environ["MODELLOOP_JOB_KINDS"] = f"{Path(__file__).with_name('job_kinds.py')}:register"


@pytest.fixture(autouse=True)
def _job_runner(request, monkeypatch):
    """Jobs run inline, in the process that starts them (the SDK's: this one; the CLI's: its
    subprocess): a worker process would spend seconds importing for a job of milliseconds. A
    test marked ``worker_processes`` runs each job in a worker process as users' jobs run (it
    tests what only a process does: kill, cancel, orphan, resume)."""
    process = request.node.get_closest_marker("worker_processes") is not None
    monkeypatch.setenv("MODELLOOP_JOB_RUNNER", "process" if process else "inline")


def pytest_collection_modifyitems(config, items):
    """Slow tests first: run in parallel (scripts/test.sh), a long test started last would end
    the suite alone on one worker while the others idle. With ``--remote``, only the tests that
    run the command (the ``cli`` fixture): the others would run exactly as without it."""
    if config.getoption("remote"):
        kept = [item for item in items if "cli" in getattr(item, "fixturenames", ())
                or item.nodeid.startswith("tests/remote/")]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
        for item in items:
            reason = LOCAL_ONLY_TESTS.get(item.nodeid.split("[", 1)[0])
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"not through the API: {reason}"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: else in order
    _check_groups(items)


#: The CLI tests of what cannot go through the API, by node id, with why (``--remote``).
LOCAL_ONLY_TESTS = {
    "tests/registry/test_trust.py::test_gated_aliases_are_configurable":
        "a workspace whose configuration is broken has no server to ask: it does not start",
}


#: Every test that runs Ray (marked ``ray``), by node id prefix: one xdist worker runs them one
#: after another on the one local Ray that :func:`local_ray` starts in that process. Starting Ray
#: takes 15-50 s of both cores on a 2-core machine, and each start slows every other worker.
RAY_TESTS = (
    "tests/training/test_ray_jobs.py",
    "tests/pipelines/test_executors.py::test_the_same_pipeline_runs_on_ray",
    "tests/pipelines/test_loop.py::test_the_loop_runs_on_other_executors[ray]",
    "tests/batch/test_transform_cli.py::test_ray_executor_gives_the_same_output",
)


#: Test modules with a costly module-scoped fixture (a server, a trained model, MLflow's imports
#: and tracking store): one xdist worker runs each, so the fixture is made once, not once on every
#: worker that happens to get one of its tests (three MLflow setups took 25-29 s each).
ONE_WORKER_MODULES = (
    "tests/api/test_app.py",
    "tests/api/test_auth.py",
    "tests/quality/test_quality_false_alarms.py",
    "tests/remote/test_remote_schema.py",
    "tests/remote/test_remote_sdk.py",
    "tests/registry/test_fastpath.py",
    "tests/registry/test_import_mlflow_uri.py",
    "tests/registry/test_package_mlflow.py",
    "tests/registry/test_skops_files.py",
    "tests/serving/test_bad_input.py",
    "tests/serving/test_endpoint_auth.py",
    "tests/serving/test_fastpath_serving.py",
    "tests/serving/test_fuzz.py",
    "tests/serving/test_protocols.py",
    "tests/serving/test_v2_binary.py",
    "tests/test_benchmarks.py",
    "tests/test_errors.py",
    "tests/ui/test_console.py",
)


def _check_groups(items) -> None:
    """Keep :data:`RAY_TESTS` and :data:`ONE_WORKER_MODULES` true as tests are added."""
    for item in items:
        if item.get_closest_marker("ray") and not item.nodeid.startswith(RAY_TESTS):
            raise pytest.UsageError(f"{item.nodeid} is marked ray: add it to RAY_TESTS in "
                                    "tests/conftest.py, so that it shares the one local Ray")
        module = item.nodeid.split("::", 1)[0]
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if module not in ONE_WORKER_MODULES and any(d[-1].scope == "module" for d in defs if d):
            raise pytest.UsageError(f"{module} has a module-scoped fixture: add it to "
                                    "ONE_WORKER_MODULES in tests/conftest.py, so that one xdist "
                                    "worker makes it once")


@pytest.hookimpl(optionalhook=True)  # a hook of xdist, which may not be loaded
def pytest_xdist_make_scheduler(config, log):
    """xdist's ``load`` distribution, except that the tests of :data:`RAY_TESTS` are one unit of
    work, and so is each module of :data:`ONE_WORKER_MODULES` (xdist's own ``--dist loadgroup`` does not group with pytest 9, whose items no longer
    take the group's suffix on their node id). Every other test is a unit of its own, as under
    ``load``; the largest units go first (then collection order: slow tests first)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(RAY_TESTS):
                return "ray"
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return Scheduling(config, log)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for every Ray test of this process (see :data:`RAY_TESTS`); its workers get
    the S3 test server's settings, as a cluster's nodes have their own credentials."""
    ray = pytest.importorskip("ray")
    env = {}
    if os.environ.get("MODELLOOP_TEST_S3_ENDPOINT"):
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_S3": os.environ["MODELLOOP_TEST_S3_ENDPOINT"]}
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env} if env else None)
    yield ray
    if started:
        ray.shutdown()


def _need(var: str, what: str) -> str:
    value = os.environ.get(var)
    if not value:
        message = f"{what} is not running ({var} unset); run the suite with scripts/test.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return value


@pytest.fixture
def postgres_url() -> str:
    """A fresh, empty PostgreSQL database for one test."""
    base = _need("MODELLOOP_TEST_POSTGRES_URL", "PostgreSQL")
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """The Redis server scripts/services.sh started (start_redis); tests using it pick their
    own stream keys, so they share one database."""
    return _need("MODELLOOP_TEST_REDIS_URL", "Redis")


@pytest.fixture
def s3_endpoint() -> str:
    return _need("MODELLOOP_TEST_S3_ENDPOINT", "the S3-compatible server")


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch) -> str:
    """A fresh bucket on the S3-compatible server; returns its ``s3://`` URL."""
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    name = f"t-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/artifacts"


BACKENDS = ["sqlite+local", "postgres+s3"]


def pytest_generate_tests(metafunc):
    """A test on a ``workspace`` runs on SQLite and a local folder; one marked ``all_backends``
    on every pair. What each store must do is checked on every backend by the store's
    conformance suites (tests/store/conformance); the marked tests are the deliberate few that
    keep each service area end to end on PostgreSQL and S3 (artifacts, concurrency)."""
    if "backend" in metafunc.fixturenames:
        every = metafunc.definition.get_closest_marker("all_backends") is not None
        metafunc.parametrize("backend", BACKENDS if every else BACKENDS[:1], indirect=True)


@pytest.fixture
def backend(request):
    """(store_url, artifacts_url) of the test's backend pair; None means the embedded default."""
    if request.param == "sqlite+local":
        return None, None
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("s3_bucket")


@pytest.fixture
def workspace(tmp_path, backend):
    """A new workspace on the test's backend pair (see :func:`pytest_generate_tests`)."""
    from modelloop import Workspace

    store_url, artifacts_url = backend
    ws = Workspace.init(tmp_path / "ws", store_url=store_url, artifacts_url=artifacts_url)
    yield ws
    ws.close()


@pytest.fixture
def local_workspace(tmp_path):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        import json

        return json.loads(self.out)

    def __repr__(self):
        return f"CliResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


def run_cli(
    *args: str,
    cwd: str | Path | None = None,
    env: dict | None = None,
    check: bool = True,
    timeout: float = 300,
) -> CliResult:
    """Run the real ``modelloop`` command as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MODELLOOP_HOME", None) if env is None or "MODELLOOP_HOME" not in env else None
    proc = subprocess.run(
        [sys.executable, "-m", "modelloop", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    if check and result.code != 0:
        raise AssertionError(f"modelloop {' '.join(map(str, args))} failed: {result!r}")
    return result


def invoke_cli(
    *args: str, cwd: str | Path | None = None, env: dict | None = None, check: bool = True
) -> CliResult:
    """``modelloop ARGS`` in this process, through the console script's top-level handler (its
    error formatting and exit codes included) inside click's test isolation: for help and
    error-format tests, where a subprocess would spend seconds importing for milliseconds of
    work. :func:`run_cli` stays the way to test the command as a process."""
    import contextlib

    from click.testing import CliRunner

    from modelloop.cli.main import main

    isolated_env = {"MODELLOOP_DEBUG": None, "MODELLOOP_HOME": None, **(env or {})}
    with (
        CliRunner().isolation(env=isolated_env) as (out, err, _),
        contextlib.chdir(cwd or os.getcwd()),
    ):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.stdout.flush()  # text written with sys.stdout.write is buffered until then
            sys.stderr.flush()
    result = CliResult(
        code, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
    )
    if check and result.code != 0:
        raise AssertionError(f"modelloop {' '.join(map(str, args))} failed: {result!r}")
    return result


def pytest_addoption(parser):
    parser.addoption(
        "--remote", action="store_true", default=os.environ.get("MODELLOOP_TEST_REMOTE") == "1",
        help="run the cli fixture's commands through a modelloop API server over each test's "
             "workspace (MODELLOOP_URL), not on the workspace itself (or MODELLOOP_TEST_REMOTE=1)",
    )


@pytest.fixture
def cli(request):
    """``cli(*args)``: the ``modelloop`` command, run in this process (:func:`invoke_cli`), or as
    a subprocess (:func:`run_cli`) for a test marked ``cli_subprocess`` (signals, process exit,
    environment read at start-up). With ``--remote``, through the API (:func:`remote_cli`)."""
    forced = os.environ.get("MODELLOOP_TEST_CLI") == "subprocess"  # every call a real process
    if request.config.getoption("remote") and not request.node.get_closest_marker("cli_subprocess"):
        from tests.remote_server import ApiServers

        servers = ApiServers()
        request.addfinalizer(servers.close)
        return functools.partial(remote_cli, servers)
    if forced or request.node.get_closest_marker("cli_subprocess"):
        return run_cli

    def in_process(*args, timeout: float | None = None, **kwargs):
        return invoke_cli(*args, **kwargs)

    return in_process


#: Commands that run on the workspace's machine only (they make a workspace, or are servers).
LOCAL_COMMANDS = ("init", "quickstart", "samples", "demo", "up", "serve", "controller", "learn")


def remote_cli(servers, *args, cwd=None, env=None, check=True, timeout=None) -> CliResult:
    """``modelloop ARGS`` as :func:`invoke_cli` runs it, but with ``MODELLOOP_URL`` and
    ``MODELLOOP_TOKEN`` naming an API server over the workspace the command would have used
    (``-w DIR``, ``MODELLOOP_HOME``, or found from ``cwd``), which the command then never opens
    itself. Commands that make a workspace or are servers run as they are."""
    from modelloop.config import CONFIG_FILE, find_root
    from modelloop.errors import ModelloopError

    args = [str(a) for a in args]
    root, rest, i = None, [], 0
    while i < len(args):
        if args[i] in ("-w", "--workspace") and i + 1 < len(args) and root is None:
            root, i = args[i + 1], i + 2
            continue
        if args[i].startswith("--workspace="):
            root = args[i].split("=", 1)[1]
        else:
            rest.append(args[i])
        i += 1
    command = next((a for a in rest if not a.startswith("-")), None)
    if root is None:
        root = (env or {}).get("MODELLOOP_HOME")
    if command in LOCAL_COMMANDS or "--help" in rest or "-h" in rest:
        return invoke_cli(*args, cwd=cwd, env=env, check=check)
    here = Path(cwd or os.getcwd()).resolve()
    found = [f for f in (here, *here.parents) if (f / CONFIG_FILE).is_file()][:1]
    try:
        root = find_root(here / root) if root else found[0]
    except (ModelloopError, IndexError):  # no workspace: the command says so, as it does locally
        return invoke_cli(*args, cwd=cwd, env=env, check=check)
    server = servers.of(root)
    remote_env = {**(env or {}), "MODELLOOP_URL": server.url, "MODELLOOP_TOKEN": server.token,
                  "MODELLOOP_HOME": None}
    return invoke_cli(*rest, cwd=cwd, env=remote_env, check=check)


class DemoWorkspace:
    """A workspace that ran ``modelloop demo`` (three days, the third drifted), built once per
    test session: ``folder`` holds it (read it, never change it: copy it with :meth:`copy`
    first), ``out``/``err``/``code`` what the command printed and returned."""

    #: The demo's arguments: small, to completion (tests/test_demo.py reads its story).
    ARGS = ("--days", "3", "--rows", "600", "--drift-day", "3", "--day-seconds", "3")

    def __init__(self, folder: Path, result: dict):
        self.folder = folder
        self.code, self.out, self.err = result["code"], result["out"], result["err"]

    def copy(self, dest: Path) -> Path:
        """A private copy of the demo's folder to change (its paths are relative: a copy is a
        workspace of its own; what the demo recorded, such as its loop's watched folder, still
        names the original)."""
        import shutil

        shutil.copytree(self.folder, dest, ignore=shutil.ignore_patterns("*.sock", "*.lock"))
        return dest


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory) -> DemoWorkspace:
    """The demo's workspace, built once for the whole session, across xdist workers too (the
    first worker to ask builds it under a file lock, the others wait and reuse it): the demo
    test reads its story, the console's browser tests walk a copy of it. Running it in each
    would cost the suite another ~25 s."""
    import json

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, record = shared / "demo-workspace", shared / "demo-workspace.json"
    with FileLock(str(shared / "demo-workspace.lock")):
        if not record.is_file():
            result = invoke_cli("demo", folder, *DemoWorkspace.ARGS, check=False,
                                env={"MODELLOOP_JOB_RUNNER": "inline"})
            from modelloop.training import warm_workers

            warm_workers.shutdown(folder / ".modelloop")  # the warm job server it started
            record.write_text(json.dumps({"code": result.code, "out": result.out,
                                          "err": result.err}))
    demo = DemoWorkspace(folder, json.loads(record.read_text()))
    assert demo.code == 0, f"modelloop demo failed:\n{demo.out[-3000:]}\n{demo.err[-3000:]}"
    return demo


def write_csv(path: Path, frame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
