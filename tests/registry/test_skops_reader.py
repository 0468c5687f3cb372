"""modelloop's reader of skops files: the model skops would return, for every built-in algorithm,
and a hostile file refused with a typed error before anything in it is imported or built."""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile

import numpy as np
import pytest

from modelloop.errors import IntegrityError
from modelloop.registry.skops_files import _lists_from_skops, skops_io, skops_load
from modelloop.registry.skops_reader import MAX_DEPTH, Unsupported, read_skops


@pytest.fixture
def lists():
    """skops' default trusted types, as the reader gets them (cheap once skops is imported)."""
    skops_io()
    return _lists_from_skops()


# -- the same model as skops.io.load, for every algorithm ----------------------------------------
def _cases():
    from modelloop.training.algorithms import ALGORITHMS, installed

    for name, algorithm in ALGORITHMS.items():
        for task, present in (("classification", algorithm.classifier),
                              ("regression", algorithm.regressor)):  # fmt: skip
            if present:
                marks = () if installed(algorithm) else (pytest.mark.skip("not installed"),)
                yield pytest.param(name, task, id=f"{name}-{task}", marks=marks)


#: Small models: the point is every kind of node, not their size.
_SMALL = {"n_estimators": 3, "max_iter": 5}


def _same(a, b, where="model") -> None:
    """a and b hold the same state: types, values, arrays (dtype, shape, order, bits)."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.flags.c_contiguous == b.flags.c_contiguous, where
        if a.dtype.names:  # field by field: padding bytes between fields are not state
            for field in a.dtype.names:
                _same(np.ascontiguousarray(a[field]), np.ascontiguousarray(b[field]),
                      f"{where}.{field}")
        elif a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                _same(x, y, f"{where}[{i}]")
        else:
            assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert b != b, where
    elif isinstance(a, (str, int, float, bool, type(None), type, np.generic, np.dtype, slice)):
        assert a == b, where
    elif type(a).__name__ == "Generator":
        assert a.bit_generator.state == b.bit_generator.state, where
    elif hasattr(a, "__getstate__") and not hasattr(a, "__dict__"):  # Cython: Tree, losses
        _same(a.__reduce__()[1:], b.__reduce__()[1:], where)
    else:
        _same(vars(a), vars(b), f"{where}.{type(a).__name__}")


@pytest.mark.parametrize(("algorithm", "task"), list(_cases()))
def test_every_algorithm_loads_as_skops_loads_it(algorithm, task, tmp_path, lists):
    from modelloop.data.samples import loan_applications
    from modelloop.registry.package import read_manifest, save_package
    from modelloop.registry.signature import Signature
    from modelloop.training.algorithms import ALGORITHMS
    from modelloop.training.trainers import train

    frame = loan_applications(300, seed=1).drop(columns=["application_id", "applied_at"])
    target = "approved" if task == "classification" else "loan"
    settable = ALGORITHMS[algorithm].estimator("binary" if target == "approved" else task)
    settable = settable.get_params()
    params = {k: v for k, v in _SMALL.items() if k in settable and k != "max_iter"
              or k == "max_iter" and algorithm == "hist_gradient_boosting"}
    result = train(frame, target, algorithm, params or None)
    features = [f["name"] for f in result.features]
    folder = tmp_path / "package"
    save_package(result.model, folder, signature=Signature.from_frame(frame[features]))
    manifest = read_manifest(folder)
    info = manifest.flavor_info
    path = folder / (info.get("file") if manifest.flavor == "sklearn" else info["preprocess_file"])

    ours = read_skops(path, info["trusted_types"], lists)
    theirs = skops_io().load(path, trusted=info["trusted_types"])
    _same(ours, theirs)
    X = frame[features]
    if manifest.flavor != "sklearn":  # the booster's preprocessing: its output
        np.testing.assert_array_equal(ours.transform(X), theirs.transform(X))
        return
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    if hasattr(theirs, "predict_proba"):
        np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))


# -- hostile files: refused, typed, before anything is imported -----------------------------------
def _scaler_file(tmp_path):
    from sklearn.preprocessing import StandardScaler

    path = tmp_path / "good.skops"
    skops_io().dump(StandardScaler().fit(np.arange(6.0).reshape(3, 2)), path)
    return path


def _rewrite(src, dst, schema=None, extra=(), drop=(), compression=zipfile.ZIP_STORED):
    """A copy of skops file ``src`` with another schema, members added or left out."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", compression=compression) as out:
        for info in z.infolist():
            if info.filename in drop:
                continue
            data = z.read(info)
            if info.filename == "schema.json" and schema is not None:
                data = json.dumps(schema(json.loads(data))).encode()
            out.writestr(info.filename, data)
        for name, data in extra:
            out.writestr(name, data)
    return dst


def _node(module, cls, loader="ObjectNode", **more):
    return {"__module__": module, "__class__": cls, "__loader__": loader, **more}


def _with_attr(value):
    """Put ``value`` (a node) into the scaler's attributes."""
    def change(schema):
        content = schema["content"]["content"]
        content["extra"] = value
        schema["content"]["key_types"]["content"].append(_node("builtins", "str", "TypeNode"))
        return schema
    return change


def _npy(header: str, data: bytes = b"", version=(1, 0)) -> bytes:
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    size = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + size + text + data


def _array_node(member):
    return _node("numpy", "ndarray", "NdArrayNode", type="numpy", file=member)


HOSTILE = {
    "an unknown type": (_with_attr(_node("evil_module_xyz", "Payload")), {},
                        "evil_module_xyz.Payload"),
    "a function reference": (_with_attr(_node("builtins", "eval", "FunctionNode")), {},
                             "builtins.eval"),
    "a type reference": (_with_attr(_node("os", "system", "TypeNode")), {}, "os.system"),
    "an oversized array header": (
        _with_attr(_array_node("big.npy")),
        {"big.npy": _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
                         b"\0" * 8)}, "does not match its size"),
    "a huge header": (_with_attr(_array_node("long.npy")),
                      {"long.npy": _npy("{" + " " * 20000 + "}", version=(2, 0))}, "header"),
    "an object array": (
        _with_attr(_array_node("obj.npy")),
        {"obj.npy": _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8)},
        "Python objects"),
    "a header numpy would not write": (
        _with_attr(_array_node("odd.npy")),
        {"odd.npy": _npy("{'descr': " + "[" * 300 + ", 'fortran_order': False, 'shape': (1,), }",
                         b"\0" * 8)}, "not a valid array"),
    "a path out of the zip": (_with_attr(_array_node("../etc/passwd")), {"../etc/passwd": b"x"},
                              "not a plain file name"),
    "a member that is not there": (_with_attr(_array_node("../../secret.npy")), {},
                                   "not in the file"),
    "a node nested too deep": (_with_attr(
        __import__("functools").reduce(lambda inner, _: _node("builtins", "list", "ListNode",
                                                              content=[inner]),
                                       range(MAX_DEPTH + 5),
                                       _node("builtins", "int", "JsonNode", content="1"))),
        {}, "nest"),
    "an object containing itself": (
        lambda s: {**s, "__id__": 7, "content": {**s["content"], "__id__": 8, "content": {
            **s["content"]["content"], "mean_": _node("builtins", "list", "ListNode", __id__=9,
                                                      content=[{"__id__": 7}])}}},
        {}, "contains itself"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_is_refused_with_a_typed_error(case, tmp_path, lists):
    change, members, needle = HOSTILE[case]
    path = _rewrite(_scaler_file(tmp_path), tmp_path / "bad.skops", change, members.items())
    with pytest.raises(IntegrityError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        read_skops(path, [], lists)
    with pytest.raises(IntegrityError):  # and through the flavor's entry point
        skops_load(path, [])
    assert "evil_module_xyz" not in sys.modules


def test_archive_tricks_are_refused(tmp_path, lists):
    good = _scaler_file(tmp_path)
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = _rewrite(good, tmp_path / "twice.skops", extra=[("schema.json", b"{}")])
    with pytest.raises(IntegrityError, match="twice"):
        read_skops(twice, [], lists)
    bomb = tmp_path / "bomb.skops"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_BZIP2) as z:
        z.writestr("schema.json", b" " * 20_000_000)
    with pytest.raises(IntegrityError, match="unpacks to"):
        read_skops(bomb, [], lists)
    no_schema = _rewrite(good, tmp_path / "noschema.skops", drop={"schema.json"})
    with pytest.raises(IntegrityError, match="schema.json"):
        read_skops(no_schema, [], lists)
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match="not a readable skops file"):
        read_skops(tmp_path / "junk.skops", [], lists)


def test_recorded_types_are_trusted_and_nothing_else(tmp_path, lists):
    """A type beyond skops' defaults loads only when the package recorded it (a forest's trees)."""
    from sklearn.tree import DecisionTreeClassifier

    path = tmp_path / "tree.skops"
    X = np.arange(20.0).reshape(10, 2)
    model = DecisionTreeClassifier(random_state=0).fit(X, X[:, 0] > 8)
    skops_io().dump(model, path)
    with pytest.raises(IntegrityError, match="sklearn.tree._tree.Tree"):
        read_skops(path, [], lists)
    loaded = read_skops(path, ["sklearn.tree._tree.Tree"], lists)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

    def outputs(schema):  # Tree(n_features, n_classes, n_outputs): a billion outputs
        tree = schema["content"]["content"]["tree_"]
        count = tree["__reduce__"]["args"]["content"][2]
        count["content"] = "1000000000"
        del count["__id__"]  # the int 1's id: skops would take the node read first with that id
        return schema

    bad = _rewrite(path, tmp_path / "bad.skops", outputs)
    with pytest.raises(IntegrityError, match="1000000000 outputs"):
        read_skops(bad, ["sklearn.tree._tree.Tree"], lists)


def test_parts_of_the_format_it_does_not_read_go_to_skops(tmp_path, lists):
    good = _scaler_file(tmp_path)
    older = _rewrite(good, tmp_path / "old.skops", lambda s: {**s, "protocol": 1})
    with pytest.raises(Unsupported):
        read_skops(older, [], lists)
    method = _rewrite(good, tmp_path / "method.skops", _with_attr(_node(
        "sklearn.preprocessing._data", "StandardScaler", "MethodNode",
        content={"func": "fit", "obj": _node("sklearn.preprocessing._data", "StandardScaler")})))
    with pytest.raises(Unsupported):
        read_skops(method, [], lists)
    with pytest.raises(IntegrityError, match="StandardScaler.fit"):  # skops refuses it, typed
        skops_load(method, [])
    assert skops_load(older, []).mean_.tolist() == [2.0, 3.0]  # what skops reads


def test_a_random_generator_asking_for_a_huge_seed_pool_is_refused(tmp_path, lists):
    from sklearn.preprocessing import StandardScaler

    model = StandardScaler().fit(np.arange(6.0).reshape(3, 2))
    model.rng_ = np.random.default_rng(1)  # as a HistGradientBoosting model holds one
    path = tmp_path / "rng.skops"
    skops_io().dump(model, path)

    def inflate(node):
        if isinstance(node, dict):
            if node.get("__loader__") == "RandomGeneratorNode":
                seed = node["content"]["seed_seq"]["content"]
                assert "pool_size" in seed
                seed["pool_size"] = _node("builtins", "int", "JsonNode", content="1000000000")
            for value in node.values():
                inflate(value)
        elif isinstance(node, list):
            for value in node:
                inflate(value)
        return node

    assert read_skops(path, [], lists).rng_.bit_generator.state == model.rng_.bit_generator.state
    bad = _rewrite(path, tmp_path / "bad.skops", inflate)
    with pytest.raises(IntegrityError, match="seed pool"):
        read_skops(bad, [], lists)


def test_fortran_and_scalar_arrays_read_as_numpy_reads_them(tmp_path, lists):
    from sklearn.preprocessing import StandardScaler

    model = StandardScaler().fit(np.asfortranarray(np.arange(12.0).reshape(4, 3)))
    model.extra_ = (np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.float64(2.5),
                    np.array(["a", None], dtype=object), np.dtype("int32"))
    path = tmp_path / "arrays.skops"
    skops_io().dump(model, path)
    ours = read_skops(path, ["numpy.dtype"], lists)
    theirs = skops_io().load(path, trusted=["numpy.dtype"])
    _same(ours, theirs)
    assert ours.extra_[0].flags.f_contiguous
    buffer = io.BytesIO()
    np.save(buffer, ours.extra_[0])
    assert np.load(io.BytesIO(buffer.getvalue())).tolist() == theirs.extra_[0].tolist()
