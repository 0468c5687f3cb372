"""Architecture holds: layer contract (import-linter) and a light ``import modelloop``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_hold():
    # import-linter of the interpreter running the tests: works without the venv on PATH
    run = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    proc = subprocess.run(
        [sys.executable, "-c", run, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_modelloop_loads_nothing_heavy():
    code = (
        "import sys, modelloop; heavy = [m for m in ('pandas', 'pyarrow', 'sqlalchemy', 'sklearn', "
        "'numpy', 'scipy', 'optuna', 'alembic') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_cli_help_loads_nothing_heavy():
    code = (
        "import sys; from modelloop.cli.main import cli; "
        "heavy = [m for m in ('pandas', 'pyarrow', 'sqlalchemy', 'sklearn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_no_source_file_is_over_500_lines():
    """A file a newcomer reads top to bottom: past 500 lines, split it along a real seam."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "src").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}  # fmt: skip
    assert not long, f"split these files (at most 500 lines each): {long}"
