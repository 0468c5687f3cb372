"""Helpers for pipeline tests: the ``runs`` commands, driven as a user would."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Until the lead registers ``runs``/``approve``/``reject`` in cli/main.py, add them here.
_DRIVER = (
    "import sys; from modelloop.cli.main import cli, main; from modelloop.cli import runs as r\n"
    "for cmd in (r.runs, r.approve, r.reject):\n"
    "    cli.commands.setdefault(cmd.name, cmd)\n"
    "main(sys.argv[1:])\n"
)


class Result:
    def __init__(self, proc):
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self):
        import json

        return json.loads(self.out)

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


@pytest.fixture
def runs_cli():
    def run(*args, ws, check=True, env=None):
        import os

        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER, "-w", str(ws.root), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )
        result = Result(proc)
        if check and result.code != 0:
            raise AssertionError(f"modelloop {' '.join(map(str, args))} failed: {result!r}")
        return result

    return run
