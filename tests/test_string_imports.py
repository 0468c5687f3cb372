"""No code reaches around the layers by strings.

import-linter sees ``import`` statements only. A module loaded by name (``import_module(...)``,
``pkgutil.resolve_name``, a ``"modelloop.x:attr"`` class path handed to another process) is an
import it cannot check, so the layers would hold on paper only. Loading by name is allowed in the
registries listed here, each for a stated reason; everything else imports what it uses.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "modelloop"

#: Modules that may load code by name, and why.
REGISTRIES = {
    "common/loading.py": "loads the callables a user names (custom trainers, pipeline steps)",
}

#: Calls that load a module by name.
LOADERS = {"import_module", "__import__", "resolve_name", "spec_from_file_location", "find_spec"}

#: A string naming a modelloop module or an object in one: "modelloop.serving.app:create_app".
MODULE_PATH = re.compile(r"^modelloop(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?$")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _names_a_library(call: ast.Call) -> bool:
    """``find_spec("lightgbm")``: a third-party library named by a literal, not our code."""
    first = call.args[0] if call.args else None
    return (
        isinstance(first, ast.Constant)
        and isinstance(first.value, str)
        and not first.value.startswith(("modelloop", "."))
    )


def _offences(path: Path) -> list[str]:
    rel = path.relative_to(SRC).as_posix()
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if isinstance(func, ast.Attribute) and ast.unparse(func.value) == "loading":
                continue  # modelloop.common.loading's own functions: the registry, used
            if name in LOADERS and rel not in REGISTRIES and not _names_a_library(node):
                found.append(f"{rel}:{node.lineno}: loads a module by name ({name})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docs and MODULE_PATH.match(node.value) and ":" in node.value:
                found.append(f"{rel}:{node.lineno}: names code by a string ({node.value!r})")
        elif isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if (
                isinstance(head, ast.Constant)
                and str(head.value).startswith("modelloop.")
                and rel not in REGISTRIES
            ):
                found.append(f"{rel}:{node.lineno}: builds a module name ({ast.unparse(node)})")
    return found


def test_no_module_is_imported_by_string_outside_the_registries():
    offences = [o for path in sorted(SRC.rglob("*.py")) for o in _offences(path)]
    assert not offences, "imports by string outside the registries:\n" + "\n".join(offences)


def test_the_check_catches_each_kind(tmp_path, monkeypatch):
    """The scanner itself: each way of reaching around the layers is caught, a library is not."""
    bad = tmp_path / "modelloop" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "import importlib, pkgutil\n"
        "KINDS = {'transform': 'modelloop.batch.step:run'}\n"
        "def load(kind):\n"
        "    return importlib.import_module(KINDS[kind])\n"
        "def opener(root):\n"
        "    return pkgutil.resolve_name('modelloop.workspace:Workspace')(root)\n"
        "def cmd(name):\n"
        "    return f'modelloop.cli.{name}'\n"
    )
    ok = tmp_path / "modelloop" / "ok.py"
    ok.write_text("import importlib.util\nHAVE_LGBM = importlib.util.find_spec('lightgbm')\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path / "modelloop")
    assert len(_offences(bad)) == 5
    assert _offences(ok) == []
