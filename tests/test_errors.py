"""Internal errors are bugs: hostile input to the CLI and the SDK ends as a typed error naming it.

The CLI is driven in this process through its real top-level handler (:func:`modelloop.cli.main.main`
inside click's test isolation), so a few hundred hostile invocations stay cheap; the SDK through
the façade's public methods.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import click
import pytest
from tests.conftest import CliResult, invoke_cli

from modelloop.cli.main import EXIT_INTERNAL, cli
from modelloop.data.samples import loan_applications
from modelloop.errors import InvalidInput, ModelloopError


def run(*args, env: dict | None = None) -> CliResult:
    """``modelloop ARGS`` through the top-level handler, as the console script runs it."""
    return invoke_cli(*args, env=env, check=False)


def assert_user_error(result: CliResult, *needles: str) -> None:
    """Failed as a user's mistake: non-zero, not 'internal error', one line naming the input."""
    assert result.code not in (0, EXIT_INTERNAL), result
    assert "Traceback" not in result.err and "internal error" not in result.err, result
    for needle in needles:
        assert needle in result.err, (needle, result)


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory):
    from modelloop import Workspace

    root = tmp_path_factory.mktemp("errors") / "ws"
    ws = Workspace.init(root)
    csv = root / "day1.csv"
    loan_applications(300, seed=3).to_csv(csv, index=False)
    ws.datasets.ingest("loans", [csv], event_time_column="applied_at")
    ws.close()
    return root


# -- the inputs that were found to give "internal error" --------------------------------------------
def test_huge_counts_and_durations_are_user_errors(ws_root):
    w = ("-w", ws_root)
    huge = "99999999999999999999"
    assert_user_error(run(*w, "events", "-n", huge), huge, "64 bits")
    assert_user_error(run(*w, "events", "--after", huge), huge)
    assert_user_error(run(*w, "data", "head", "loans", "-n", huge), huge)
    assert_user_error(run(*w, "jobs", "list", "-n", huge), huge)
    assert_user_error(run(*w, "runs", "show", huge), huge)
    assert_user_error(run(*w, "jobs", "show", huge), huge)
    assert_user_error(run(*w, "train", "loans", "-t", "approved", "--since", "99999999999d"),
                      "99999999999d")
    assert_user_error(run(*w, "monitor", "create", "m", "--baseline", "loans@1", "--dataset",
                          "loans", "--window", "99999999999d"), "99999999999d")


def test_wrong_configuration_values_are_named(tmp_path):
    ws = tmp_path / "ws"
    run("init", ws)
    config = ws / "modelloop.toml"
    config.write_text("[store]\nurl = 42\n")
    assert_user_error(run("-w", ws, "data", "list"), "url = 42", "string")
    config.write_bytes(b'[store]\nurl = "\xff\xfe"\n')
    assert_user_error(run("-w", ws, "data", "list"), "modelloop.toml", "UTF-8")
    config.write_text('[artifacts]\noptions = "endpoint"\n')
    assert_user_error(run("-w", ws, "data", "list"), "options", "table")
    config.unlink()
    run("init", tmp_path / "ok")
    for url in ("s3://", "s3:///", "gs://"):
        result = run("-w", tmp_path / "ok", "data", "list", env={"MODELLOOP_ARTIFACTS_URL": url})
        assert_user_error(result, repr(url), "bucket")


def test_a_loop_file_that_is_not_utf8_is_named(ws_root, tmp_path):
    spec = tmp_path / "loop.yaml"
    spec.write_bytes(b"name: \xff\xfe\n")
    assert_user_error(run("-w", ws_root, "loop", "validate", spec), "loop.yaml", "UTF-8")


def test_paths_inside_proc_are_named(ws_root, tmp_path):
    assert_user_error(run("init", "/proc/self/no/ws"), "/proc/")
    assert_user_error(run("-w", "/proc/self", "data", "list"), "/proc/")
    # an export folder the kernel refuses: the OS error names the path, as one line
    from modelloop import Workspace

    with Workspace(ws_root) as ws:
        job = ws.training.train("loans", "approved", "logistic_regression")
        ws.models.register_from_job("loans", job["id"])
    result = run("-w", ws_root, "models", "export", "loans@1", "/proc/self/modelloop-export")
    assert_user_error(result, "/proc/")
    folder_as_file = tmp_path / "a-folder.yaml"
    folder_as_file.mkdir()
    assert_user_error(run("-w", ws_root, "loop", "validate", folder_as_file), "a-folder.yaml")


def test_the_handler_names_the_path_of_os_errors(tmp_path, monkeypatch):
    """Any command that meets a refused path (permissions, a folder for a file) says which."""

    @cli.command("p8-open", hidden=True)
    @click.argument("path")
    def p8_open(path):
        Path(path).read_text()

    try:
        folder = tmp_path / "folder"
        folder.mkdir()
        assert_user_error(run("p8-open", folder), str(folder))
        assert_user_error(run("p8-open", folder / "x" / "y"), str(folder / "x" / "y"))
        bad = tmp_path / "latin1.txt"
        bad.write_bytes(b"caf\xe9")
        assert_user_error(run("p8-open", bad), "UTF-8")
    finally:
        cli.commands.pop("p8-open")


# -- closing the class: every command, hostile values -------------------------------------------
def _commands(group: click.Group, path=()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _required_args(command: click.Command) -> list[str]:
    args = []
    for p in command.params:
        if isinstance(p, click.Argument) and p.required:
            args += ["x"] * (p.nargs if p.nargs > 0 else 1)
    return args


HOSTILE_INTS = ["99999999999999999999", "-99999999999999999999", "nan", "inf", "", "²", "1.5"]
HOSTILE_FLOATS = ["nan", "inf", "-inf", "1e999", "NaN", "", "one"]


def _numeric_cases():
    for path, command in _commands(cli):
        for p in command.params:
            if not isinstance(p, click.Option) or p.is_flag:
                continue
            if isinstance(p.type, click.types.IntParamType):
                values = HOSTILE_INTS
            elif isinstance(p.type, click.types.FloatParamType):
                values = HOSTILE_FLOATS
            else:
                continue
            yield path, command, p.opts[-1], values


NUMERIC = list(_numeric_cases())


def test_there_are_numeric_options_to_check():
    assert len(NUMERIC) > 30  # the walk finds the tool's options, so the next test means something


@pytest.mark.parametrize("path,command,option,values", NUMERIC,
                         ids=[" ".join(c[0]) + " " + c[2] for c in NUMERIC])
def test_every_numeric_option_refuses_hostile_values(tmp_path, monkeypatch, path, command,
                                                     option, values):
    monkeypatch.chdir(tmp_path)  # no workspace here: nothing can run past argument parsing
    for value in values:
        result = run(*path, *_required_args(command), f"{option}={value}")
        assert_user_error(result, option)
        assert result.code == 2, result  # refused while parsing, before the command ran


HOSTILE_TEXT = ["99999999999999999999", "-1", "0", "nan", "inf", "", " ", "²", "٣", "loans@²",
                "loans@99999999999999999999", "loans@-1", "loans@", "@", "../../etc/passwd",
                "\u202e", "x" * 5000, "loans@nan", "#", "job-", "run-1e3"]

#: Commands that read a name, a reference or an id (argv templates; {} is the hostile value).
TEXT_COMMANDS = [
    ("data", "show", "{}"), ("data", "head", "{}"), ("data", "quarantine", "{}"),
    ("jobs", "show", "{}"), ("jobs", "logs", "{}"), ("jobs", "compare", "{}", "{}"),
    ("jobs", "search", "{}"), ("jobs", "list", "--status", "{}"),
    ("models", "show", "{}"), ("models", "history", "{}"), ("models", "versions", "{}"),
    ("models", "alias", "loans", "champion", "{}"),
    ("runs", "show", "{}"), ("runs", "explain", "{}", "{}"), ("runs", "logs", "{}", "train"),
    ("runs", "approve", "{}"), ("runs", "callback", "{}", "--failure"),
    ("baseline", "show", "{}"), ("monitor", "show", "{}"), ("metrics", "show", "{}"),
    ("metrics", "show", "x", "--since", "{}"), ("events", "--kind", "{}"),
    ("endpoint", "show", "{}"), ("check", "{}", "--baseline", "loans@1"),
    ("check", "loans", "--baseline", "{}"), ("evaluate", "{}", "loans"),
    ("train", "{}", "-t", "approved"), ("train", "loans", "-t", "approved", "--since", "{}"),
    ("loop", "validate", "{}"), ("transform", "{}", "in.csv", "out.csv"),
]


@pytest.mark.parametrize("template", TEXT_COMMANDS, ids=[" ".join(t) for t in TEXT_COMMANDS])
def test_names_refs_and_ids_refuse_hostile_text(ws_root, template):
    for value in HOSTILE_TEXT:
        result = run("-w", ws_root, *[value if part == "{}" else part for part in template])
        assert result.code != EXIT_INTERNAL, (value, result)
        assert "Traceback" not in result.err and "internal error" not in result.err, (value, result)


# -- the SDK: wrong types at the façade are typed errors -----------------------------------------
@pytest.fixture
def ws(ws_root):
    from modelloop import Workspace

    with Workspace(ws_root) as ws:
        yield ws


def test_the_known_wrong_calls_raise_typed_errors(ws):
    cases = [
        (lambda: ws.datasets.get(5), "ref"),
        (lambda: ws.models.resolve(None), "ref"),
        (lambda: ws.training.train("loans", "approved", params="a=1"), "params"),
        (lambda: ws.transforms.run("loans@1", "in.csv", "out.csv", workers="x"), "workers"),
        (lambda: ws.monitoring.check(12345, "loans@1"), "data"),
        (lambda: ws.jobs.list(limit=10**20), "limit"),
        (lambda: ws.endpoints.deploy("e", "loans@1", bake_seconds=math.nan), "bake_seconds"),
        (lambda: ws.datasets.get(), "ref"),
        (lambda: ws.datasets.get("loans", "extra"), "argument"),
        (lambda: ws.datasets.to_pandas("loans", nonsense=1), "nonsense"),
        (lambda: ws.events(after_id=10**20), "after_id"),
        (lambda: ws.events(kind=3), "kind"),
    ]
    for call, needle in cases:
        with pytest.raises(InvalidInput) as info:
            call()
        assert needle in str(info.value)
    # right calls are untouched: a path-like for a str, one path for a list of paths
    assert ws.datasets.get("loans").version == 1
    assert ws.datasets.ingest("loans", ws.root / "day1.csv").version is None  # already ingested


class _Wrong:
    """A value of no type any façade method expects."""

    def __repr__(self) -> str:
        return "<wrong>"


def test_every_facade_method_refuses_wrong_types(ws):
    """Each public method called with wrong-typed arguments raises a ModelloopError subclass."""
    checked = 0
    for service in ("datasets", "jobs", "models", "training", "runs", "loops", "endpoints",
                    "transforms", "monitoring"):
        svc = getattr(ws, service)
        for name in dir(type(svc)):
            if name.startswith("_") or not inspect.isfunction(inspect.getattr_static(
                    type(svc), name)):
                continue
            params = [p for p in inspect.signature(getattr(type(svc), name)).parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if not params:
                continue
            kwargs = {p.name: _Wrong() for p in params}
            try:
                getattr(svc, name)(**kwargs)
            except ModelloopError:
                checked += 1
            except Exception as exc:  # noqa: BLE001 - what the test is about
                pytest.fail(f"ws.{service}.{name}(<wrong>…) raised {type(exc).__name__}: {exc}")
            else:
                pytest.fail(f"ws.{service}.{name}(<wrong>…) accepted wrong types")
    assert checked > 60


#: Commands that read or write a file or folder the user names ({} is the hostile path).
FILE_COMMANDS = [
    ("baseline", "import", "b", "{}"), ("baseline", "export", "loans@1", "{}"),
    ("check", "loans@1", "--baseline", "loans@1", "--config", "{}"),
    ("check", "{}", "--baseline", "loans@1"),
    ("check", "loans@1", "--baseline", "loans@1", "--violations-out", "{}"),
    ("data", "ingest", "loans", "{}"), ("loop", "validate", "{}"), ("loop", "run", "{}"),
    ("jobs", "download", "1", "-o", "{}"), ("jobs", "report", "1", "-o", "{}"),
    ("models", "import", "m", "{}"), ("models", "register", "m", "--package", "{}"),
    ("models", "export", "loans@1", "{}"),
    ("monitor", "create", "m", "--baseline", "loans@1", "--dataset", "loans", "--config", "{}"),
    ("monitor", "labels", "e", "{}"), ("monitor", "report", "1", "-o", "{}"),
    ("tune", "loans", "-t", "approved", "--trials", "1", "--space", "{}"),
]


@pytest.fixture(scope="module")
def hostile_paths(tmp_path_factory):
    """Files a user might hand over by mistake: not UTF-8, a folder, inside /proc, no access."""
    folder = tmp_path_factory.mktemp("hostile")
    latin1 = folder / "latin1.csv"
    latin1.write_bytes("name,café\n1,\xe9t\xe9\n".encode("latin-1") + b"\xff\xfe\x00\x81\n")
    utf16 = folder / "utf16.yaml"
    utf16.write_text("name: x\n", encoding="utf-16")
    (folder / "a-folder").mkdir()
    broken = folder / "broken.yaml"
    broken.write_text("name: [unclosed\n  - {a: \n")
    return [latin1, utf16, broken, folder / "a-folder", "/proc/self/no/such", "/proc/self/mem",
            "/proc/self/status", folder / ("n" * 300)]


@pytest.mark.parametrize("template", FILE_COMMANDS, ids=[" ".join(t) for t in FILE_COMMANDS])
def test_hostile_files_and_paths_are_user_errors(ws_root, hostile_paths, template):
    for path in hostile_paths:
        result = run("-w", ws_root, *[path if part == "{}" else part for part in template])
        assert result.code != EXIT_INTERNAL, (str(path)[:80], result)
        assert "Traceback" not in result.err and "internal error" not in result.err, (
            str(path)[:80], result)
