"""Model files are code: a stranger's pickle never runs without an explicit, recorded trust.

Each crafted model plants a payload that would write a marker file when unpickled; the tests
assert that the marker never appears through import, register, load (SDK), serve (HTTP) and
transform, until the user trusts the version — and that it does appear then (so the tests can
fail). They also cover paths leaving a model folder, symbolic links, a tampered local cache,
malformed MLmodel files and approval-gated aliases.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from tests.serving.conftest import Server

from modelloop.errors import IntegrityError, InvalidInput, ModelloopError, UntrustedCode
from modelloop.registry.package import read_manifest, save_package
from modelloop.registry.signature import Signature

FEATURES = ["a", "b"]


def frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})


def fitted(seed: int = 0, constant: int | None = None):
    from sklearn.linear_model import LogisticRegression

    X = frame(seed=seed)
    y = (X.a + X.b > 0).astype(int) if constant is None else np.r_[np.full(39, constant), 1 - constant]
    return LogisticRegression().fit(X, y)


class Payload:
    """Unpickles as a working model, after writing ``marker`` (what a real attack would hide)."""

    def __init__(self, marker: Path, model=None):
        self.marker = str(marker)
        self.model = model if model is not None else fitted()

    def predict(self, X):
        return self.model.predict(X)

    def __reduce__(self):
        body = pickle.dumps(self.model)
        return eval, (f"(open({self.marker!r}, 'w').write('ran'), "
                      f"__import__('pickle').loads({body!r}))[1]",)


def crafted_custom_package(folder: Path, marker: Path) -> Path:
    """A self-consistent modelloop package (the attacker writes the hashes) holding the payload."""
    save_package(Payload(marker), folder, signature=Signature.from_frame(frame()), flavor="custom",
                 task="binary")
    assert not marker.exists()
    return folder


def crafted_mlflow_sklearn(folder: Path, marker: Path) -> Path:
    """What `mlflow.sklearn.save_model` writes, with a model.pkl whose unpickling runs a payload."""
    folder.mkdir(parents=True)
    with open(folder / "model.pkl", "wb") as f:
        pickle.dump(Payload(marker), f)
    inputs = json.dumps([{"type": "double", "name": n, "required": True} for n in FEATURES])
    (folder / "MLmodel").write_text(yaml.safe_dump({
        "artifact_path": "model",
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.pkl",
                                "predict_fn": "predict", "python_version": "3.11.7"},
            "sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle",
                        "sklearn_version": "1.9.1", "code": None},
        },
        "mlflow_version": "3.0.0",
        "signature": {"inputs": inputs, "outputs": None},
    }))
    return folder


def one_line_error(r, *needles: str) -> None:
    assert r.code != 0, r
    assert "Traceback" not in r.err and "internal error" not in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r.err
    for needle in needles:
        assert needle in r.err, (needle, r.err)


def register_untrusted_as_before(ws, name: str, folder: Path) -> str:
    """Register ``folder`` the way versions were registered before trust was recorded (an old
    workspace after its upgrade holds such versions): through the store, no trust given."""
    manifest = read_manifest(folder)
    files = []
    for rel in sorted(manifest.files) + ["model.json"]:
        blob = ws.artifacts.put_file(folder / rel)
        files.append({"path": rel, "digest": blob.digest, "size": blob.size})
    record = ws.store.register_model_version(
        name=name, files=files, manifest=manifest.to_dict(), package_hash=manifest.package_hash,
        flavor=manifest.flavor, task=manifest.task, job_id=None, actor="old-modelloop")
    return f"{name}@{record['version']}"


# -- finding 1 and 2: crafted pickles never run without trust -------------------------------------
def test_mlflow_sklearn_pickle_is_not_unpickled_by_import(local_workspace, tmp_path, cli):
    pytest.importorskip("mlflow")
    ws, marker = local_workspace, tmp_path / "pwned"
    folder = crafted_mlflow_sklearn(tmp_path / "mlflow-model", marker)
    r = cli("-w", ws.root, "models", "import", "evil", folder, check=False)
    one_line_error(r, "--trust-pickle")
    assert not marker.exists()
    assert ws.models.list() == []
    r = cli("-w", ws.root, "models", "import", "evil", folder, "--trust-pickle", check=False)
    one_line_error(r, "--reason")  # trust is given with a reason, or not at all
    assert not marker.exists()
    # trusted: MLflow's pickle is read (the payload runs: the user accepted it) and re-saved safe
    r = cli("-w", ws.root, "models", "import", "evil", folder, "--trust-pickle", "--reason",
            "our team's model from the old MLflow server", "--json")
    assert marker.exists()
    record = r.json()
    assert record["flavor"] == "sklearn" and record["holds_code"] is False
    trusted = [h for h in ws.models.history("evil") if h["action"] == "trusted"]
    assert len(trusted) == 1 and "old MLflow server" in trusted[0]["reason"]


def test_crafted_custom_package_never_runs_through_register_load_serve_or_transform(
        local_workspace, tmp_path, cli):
    ws, marker = local_workspace, tmp_path / "pwned"
    folder = crafted_custom_package(tmp_path / "pkg", marker)

    # register: refused without trust (CLI and SDK), nothing registered, nothing run
    r = cli("-w", ws.root, "models", "register", "evil", "--package", folder, check=False)
    one_line_error(r, "--trust-pickle")
    with pytest.raises(UntrustedCode, match="trust_pickle"):
        ws.models.register("evil", folder)
    assert ws.models.list() == [] and not marker.exists()

    # a version registered without trust (an old workspace): every way of using it refuses
    ref = register_untrusted_as_before(ws, "evil", folder)
    ws.models.approve(ref, reason="approval is not trust")
    with pytest.raises(UntrustedCode, match="--trust-pickle"):
        ws.models.load(ref)
    shown = cli("-w", ws.root, "models", "show", ref).out
    assert "code" in shown and "NOT trusted" in shown, shown
    assert "NOT trusted" in cli("-w", ws.root, "models", "versions", "evil").out

    data = tmp_path / "rows.csv"
    frame(10, seed=5).to_csv(data, index=False)
    r = cli("-w", ws.root, "transform", "--model", ref, "--input", data, "--output",
            tmp_path / "out.csv", check=False)
    one_line_error(r, "--trust-pickle")
    assert not (tmp_path / "out.csv").exists()

    ws.endpoints.create("ep", ref)
    server = Server(ws.root)
    try:
        got = httpx.post(server.url + "/endpoints/ep/invocations",
                         json={"dataframe_split": {"columns": FEATURES, "data": [[0.1, 0.2]]}})
    finally:
        server.stop()
    assert got.status_code >= 400 and "--trust-pickle" in got.json()["message"], got.text
    assert not marker.exists()

    # trusted (who and why recorded): now it loads, and the payload runs — the test can fail
    record = ws.models.trust(ref, reason="reviewed the pickle's source")
    assert record["holds_code"] and record["trusted_by"]
    assert ws.models.load(ref).predict(frame(3)).shape == (3,)
    assert marker.exists()


def test_trust_at_registration_is_recorded_with_who_and_why(local_workspace, tmp_path, cli):
    import getpass

    ws, marker = local_workspace, tmp_path / "pwned"
    folder = crafted_custom_package(tmp_path / "pkg", marker)
    r = cli("-w", ws.root, "models", "register", "mine", "--package", folder, "--trust-pickle",
            check=False)
    one_line_error(r, "--reason")
    cli("-w", ws.root, "models", "register", "mine", "--package", folder, "--trust-pickle",
        "--reason", "trained it myself in a notebook")
    assert not marker.exists()  # registering never unpickles, even when trusted
    (h,) = [h for h in ws.models.history("mine") if h["action"] == "trusted"]
    assert h["version"] == 1 and h["reason"] == "trained it myself in a notebook"
    assert getpass.getuser() in h["actor"]
    shown = cli("-w", ws.root, "models", "show", "mine@1").out
    assert "trusted by" in shown and "trained it myself" in shown, shown
    # a safe package holds no code and needs no trust
    safe = tmp_path / "safe"
    save_package(fitted(), safe, signature=Signature.from_frame(frame()))
    record = ws.models.register("safe", safe)
    assert record["holds_code"] is False and record["trusted_by"] is None
    assert "code: none" in cli("-w", ws.root, "models", "show", "safe@1").out


def test_skops_types_beyond_the_safe_set_count_as_code(local_workspace, tmp_path):
    """skops loads only the types its manifest trusts: a manifest trusting, say, ``builtins.eval``
    must not load without trust, or the trusted-type check protects nothing."""
    ws = local_workspace
    folder = tmp_path / "pkg"
    save_package(fitted(), folder, signature=Signature.from_frame(frame()))
    rewrite_manifest(folder, lambda m: m["flavor_info"].__setitem__(
        "trusted_types", [*m["flavor_info"]["trusted_types"], "builtins.eval"]))
    with pytest.raises(UntrustedCode, match="builtins.eval"):
        ws.models.register("skops", folder)


# -- finding 3: nothing outside the folder, no symbolic links ------------------------------------
def rewrite_manifest(folder: Path, change) -> None:
    """Edit model.json as an attacker would, keeping it self-consistent (hashes recomputed)."""
    from modelloop.common.hashing import sha256_file
    from modelloop.registry.package import Manifest

    data = json.loads((folder / "model.json").read_text())
    data.pop("package_hash", None)
    change(data)
    data["files"] = {rel: sha256_file(folder / rel) for rel in data["files"]
                     if (folder / rel).is_file()} | {k: v for k, v in data["files"].items()
                                                       if not (folder / k).is_file()}
    manifest = Manifest(**data)
    (folder / "model.json").write_text(json.dumps(manifest.to_dict()))


def test_mlmodel_data_path_cannot_leave_the_folder(local_workspace, tmp_path, cli):
    pytest.importorskip("mlflow")
    ws = local_workspace
    outside = tmp_path / "elsewhere" / "pkg"
    save_package(fitted(), outside, signature=Signature.from_frame(frame()))
    for data in ("../elsewhere/pkg", str(outside)):
        folder = tmp_path / f"mlflow-{abs(hash(data))}"
        folder.mkdir()
        (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"python_function": {
            "loader_module": "modelloop.registry.mlflow_interop", "data": data}}}))
        r = cli("-w", ws.root, "models", "import", "m", folder, check=False)
        one_line_error(r, "data", "MLmodel")
    assert ws.models.list() == []


def test_manifest_paths_cannot_leave_the_package(local_workspace, tmp_path, cli):
    ws = local_workspace
    other = tmp_path / "other"
    save_package(fitted(constant=1), other, signature=Signature.from_frame(frame()))
    folder = tmp_path / "pkg"
    save_package(fitted(), folder, signature=Signature.from_frame(frame()))
    rewrite_manifest(folder, lambda m: m["flavor_info"].__setitem__("file", "../other/model.skops"))
    r = cli("-w", ws.root, "models", "register", "m", "--package", folder, check=False)
    one_line_error(r, "../other/model.skops")
    folder2 = tmp_path / "pkg2"
    save_package(fitted(), folder2, signature=Signature.from_frame(frame()))
    rewrite_manifest(folder2, lambda m: m["files"].__setitem__("/etc/hostname", "0" * 64))
    r = cli("-w", ws.root, "models", "register", "m", "--package", folder2, check=False)
    one_line_error(r, "/etc/hostname")
    assert ws.models.list() == []


def test_symbolic_links_are_refused_and_never_copied(local_workspace, tmp_path, cli):
    ws = local_workspace
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2-" + "x" * 40)
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()

    # a modelloop package with a link among its extra files (manifest lists the link's content)
    folder = tmp_path / "pkg"
    save_package(fitted(), folder, signature=Signature.from_frame(frame()),
                 extra_files={"notes.txt": b"placeholder"})
    (folder / "extra" / "notes.txt").unlink()
    (folder / "extra" / "notes.txt").symlink_to(secret)
    rewrite_manifest(folder, lambda m: None)
    r = cli("-w", ws.root, "models", "register", "m", "--package", folder, check=False)
    one_line_error(r, "symbolic link", "notes.txt")

    # an MLflow folder with a linked file or folder, trusted or not
    pytest.importorskip("mlflow")
    for i, link_dir in enumerate((False, True)):
        mlf = tmp_path / f"mlflow{i}"
        mlf.mkdir()
        (mlf / "MLmodel").write_text(yaml.safe_dump({
            "flavors": {"python_function": {"loader_module": "some_module", "data": "data"}},
            "signature": {"inputs": json.dumps([{"type": "double", "name": "a"}])}}))
        if link_dir:
            (mlf / "data").symlink_to(tmp_path, target_is_directory=True)
        else:
            (mlf / "data").mkdir()
            (mlf / "data" / "conf.txt").symlink_to(secret)
        r = cli("-w", ws.root, "models", "import", "m", mlf, check=False)
        one_line_error(r, "symbolic link")
    linked = tmp_path / "mlflow-linked-mlmodel"  # its target's text never shows in an error
    linked.mkdir()
    (linked / "MLmodel").symlink_to(secret)
    r = cli("-w", ws.root, "models", "import", "m", linked, check=False)
    one_line_error(r, "symbolic link")
    assert "hunter2" not in r.err
    assert ws.models.list() == []
    assert not ws.artifacts.exists(digest)


# -- finding 4: the local cache is checked against the registry's record -------------------------
def test_tampered_cache_is_verified_against_the_recorded_hash(local_workspace, tmp_path):
    ws = local_workspace
    good, bad = tmp_path / "good", tmp_path / "bad"
    save_package(fitted(), good, signature=Signature.from_frame(frame()))
    save_package(fitted(constant=1), bad, signature=Signature.from_frame(frame()))
    ref = ws.models.register("m", good)["ref"]
    X = frame(50, seed=9)
    expected = ws.models.load(ref).predict(X)
    record = ws.models.get(ref)
    cached = ws.config.state_dir / "cache" / "models" / record["package_hash"]
    assert cached.is_dir()
    # someone swaps the cached model and rewrites model.json to match (self-consistent)
    (cached / "model.skops").write_bytes((bad / "model.skops").read_bytes())
    rewrite_manifest(cached, lambda m: None)
    assert not np.array_equal(
        __import__("modelloop.registry.package", fromlist=["x"]).load_package(cached).predict(X),
        expected)
    # the registry notices (the manifest is not the one it recorded) and fetches its own copy
    np.testing.assert_array_equal(ws.models.load(ref).predict(X), expected)
    assert read_manifest(cached).package_hash == record["package_hash"]


# -- finding 5: a malformed MLmodel file is a clear error ------------------------------------------
@pytest.mark.parametrize(("text", "needle"), [
    ("flavors: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "mapping"),
    ("flavors: 5\n", "flavors"),
    ("flavors:\n  python_function: 3\n", "python_function"),
    ("flavors:\n  python_function:\n    loader_module: m\nsignature:\n  inputs: 'not json'\n",
     "signature"),
    ("flavors:\n  python_function:\n    loader_module: m\nsignature: 7\n", "signature"),
    ("flavors:\n  python_function:\n    loader_module: modelloop.registry.mlflow_interop\n"
     "    data: [1]\n", "data"),
    (b"\xff\xfe not utf-8", "UTF-8"),
])
def test_malformed_mlmodel_names_the_file_and_the_problem(local_workspace, tmp_path, cli, text,
                                                           needle):
    folder = tmp_path / "m"
    folder.mkdir()
    if isinstance(text, bytes):
        (folder / "MLmodel").write_bytes(text)
    else:
        (folder / "MLmodel").write_text(text)
    r = cli("-w", local_workspace.root, "models", "import", "m", folder, check=False)
    one_line_error(r, "MLmodel", needle)


# -- finding 6: approval-gated aliases -------------------------------------------------------------
def test_champion_only_points_at_approved_versions_unless_forced(local_workspace, tmp_path, cli):
    ws = local_workspace
    for seed in (1, 2, 3):
        folder = tmp_path / f"pkg{seed}"
        save_package(fitted(seed), folder, signature=Signature.from_frame(frame()))
        ws.models.register("m", folder)
    with pytest.raises(InvalidInput, match="pending.*approved"):
        ws.models.set_alias("m", "champion", 1)
    r = cli("-w", ws.root, "models", "alias", "m", "champion", "1", check=False)
    one_line_error(r, "m@1 is pending", "--force")
    r = cli("-w", ws.root, "models", "alias", "m", "champion", "1", "--force", check=False)
    one_line_error(r, "--reason")
    assert "champion" not in ws.store.model_aliases("m")
    cli("-w", ws.root, "models", "alias", "m", "champion", "1", "--force", "--reason",
        "hotfix before the review")
    (h,) = [h for h in ws.models.history("m") if h["alias"] == "champion"]
    assert h["version"] == 1 and "forced" in h["reason"] and "hotfix" in h["reason"]
    # an approved version moves freely; other aliases are not gated by default
    ws.models.approve("m@2")
    ws.models.set_alias("m", "champion", 2)
    ws.models.set_alias("m", "staging", 3)
    ws.models.reject("m@3", reason="bad")
    with pytest.raises(InvalidInput, match="rejected"):
        ws.models.set_alias("m", "candidate", 3)


def test_gated_aliases_are_configurable(tmp_path, cli):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path / "ws")
    config = ws.root / "modelloop.toml"
    config.write_text(config.read_text() + '\n[registry]\napproval_gated_aliases = ["prod"]\n')
    ws = Workspace(ws.root)
    folder = tmp_path / "pkg"
    save_package(fitted(), folder, signature=Signature.from_frame(frame()))
    ws.models.register("m", folder)
    ws.models.set_alias("m", "champion", 1)  # no longer gated here
    with pytest.raises(InvalidInput, match="approved"):
        ws.models.set_alias("m", "prod", 1)
    config.write_text(config.read_text().replace('["prod"]', '"prod"'))
    r = cli("-w", ws.root, "models", "list", check=False)
    one_line_error(r, "approval_gated_aliases")


def test_rollback_of_a_gated_alias_does_not_bring_back_a_rejected_version(local_workspace,
                                                                        tmp_path):
    ws = local_workspace
    for seed in (1, 2):
        folder = tmp_path / f"pkg{seed}"
        save_package(fitted(seed), folder, signature=Signature.from_frame(frame()))
        ws.models.register("m", folder)
        ws.models.approve(f"m@{seed}")
        ws.models.set_alias("m", "champion", seed)
    ws.models.reject("m@1", reason="found a leak")
    with pytest.raises(ModelloopError, match="rejected"):
        ws.models.rollback("m")
    assert ws.models.get("m@champion")["version"] == 2


def test_integrity_error_is_still_raised_for_a_changed_blob(local_workspace, tmp_path):
    """Re-fetching a tampered cache must not hide a tampered artifact store."""
    ws = local_workspace
    folder = tmp_path / "pkg"
    save_package(fitted(), folder, signature=Signature.from_frame(frame()))
    record = ws.models.register("m", folder)
    f = next(f for f in record["files"] if f["path"] == "model.skops")
    with open(ws.artifacts.location(f["digest"]), "r+b") as fh:
        fh.seek(10)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(IntegrityError):
        ws.models.load("m@1")


def test_upgrading_an_old_store_marks_code_and_trusts_only_what_its_jobs_wrote(tmp_path):
    """Migration 0008: versions of code flavors hold code; those a training job of the workspace
    wrote are trusted as such, imported ones wait for a person's 'models trust'."""
    import datetime as dt

    import sqlalchemy as sa
    from alembic import command

    from modelloop.store import open_store
    from modelloop.store.migrate import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
        now = dt.datetime.now(dt.UTC)
        conn.execute(sa.text("insert into models (id, name, created_at) values (1, 'm', :t)"),
                     {"t": now})
        for version, flavor, job in ((1, "sklearn", 7), (2, "custom", 7), (3, "custom", None),
                                     (4, "mlflow_pyfunc", None)):
            conn.execute(sa.text(
                "insert into model_versions (model_id, version, created_at, status, package_hash,"
                " flavor, job_id, manifest) values (1, :v, :t, 'pending', :h, :f, :j, '{}')"),
                {"v": version, "t": now, "h": f"{version:064d}", "f": flavor, "j": job})
        conn.execute(sa.text("insert into model_files (version_id, path, digest, size) "
                             "select id, 'model.pkl', package_hash, 1 from model_versions"))
    engine.dispose()
    store = open_store(url)
    try:
        got = {v["version"]: (v["holds_code"], v["trusted_by"] is not None)
               for v in store.list_model_versions("m")}
    finally:
        store.close()
    assert got == {1: (False, False), 2: (True, True), 3: (True, False), 4: (True, False)}


@pytest.mark.all_backends
def test_trust_is_recorded_once_on_every_backend(workspace, tmp_path):
    ws, marker = workspace, tmp_path / "pwned"
    folder = crafted_custom_package(tmp_path / "pkg", marker)
    record = ws.models.register("m", folder, trust_pickle=True, reason="built it here")
    assert record["holds_code"] and record["trusted_reason"] == "built it here"
    old = register_untrusted_as_before(ws, "m", folder)
    with pytest.raises(InvalidInput, match="reason"):
        ws.models.trust(old)
    ws.models.trust(old, reason="reviewed")
    with pytest.raises(InvalidInput, match="already trusted"):
        ws.models.trust(old, reason="again")
    trusted = [(h["version"], h["reason"]) for h in ws.models.history("m") if h["action"] == "trusted"]
    assert trusted == [(1, "built it here"), (2, "reviewed")]
    assert "model.trusted" in [e["kind"] for e in ws.events()]
    assert not marker.exists()
    ws.models.load(old)
    assert marker.exists()
