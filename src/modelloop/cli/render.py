"""Output for people (rich tables on stdout, messages on stderr) and for scripts (``--json``)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from modelloop.common.jsonable import to_jsonable


def __getattr__(name: str):
    """``out`` (stdout) and ``err`` (stderr), rich consoles made when first used: importing rich
    is a good part of a command's start, and ``--json`` output never needs it."""
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    console = globals()[name] = Console(stderr=name == "err", highlight=False, soft_wrap=True)
    return console


def _console(name: str):
    return globals().get(name) or __getattr__(name)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data, nonfinite="keep"), indent=2) + "\n")


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A table on stdout: as wide as the terminal, or — piped to a file or ``less`` — as wide as
    its longest row, so no cell is folded at an assumed 80 columns (``--json`` is for scripts)."""
    from rich.console import Console
    from rich.table import Table

    out = _console("out")
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    if out.is_terminal:
        out.print(t)
        return
    natural = out.measure(t, options=out.options.update_width(1_000_000)).maximum
    Console(file=out.file, width=max(natural, 20), highlight=False, soft_wrap=True).print(t)


def write_output(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to a file the user named (``-o``, ``--…-out``): a folder, a read-only place
    or a path inside /proc ends as one line naming it, not as an internal error."""
    from modelloop.errors import InvalidInput

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def note(message: str) -> None:
    _console("err").print(message)


def progress_bar(description: str):
    """A byte progress bar on stderr (silent when stderr is not a terminal)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    err = _console("err")
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ), description
