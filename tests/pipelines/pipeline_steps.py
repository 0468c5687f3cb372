"""Steps shared by the pipeline tests (a module, so worker processes can import them)."""

from __future__ import annotations

from pathlib import Path

from modelloop.pipelines import StepContext, step


def note(path: str, text: str) -> None:
    """Append a line to a file: how tests count executions across processes."""
    with open(path, "a") as fh:
        fh.write(text + "\n")


def count(path: str, text: str) -> int:
    p = Path(path)
    return p.read_text().splitlines().count(text) if p.exists() else 0


@step
def load(n: int, trace: str) -> list:
    note(trace, "load")
    print(f"loading {n} rows")
    return list(range(n))


@step
def train(rows: list, alpha: float, trace: str) -> dict:
    note(trace, "train")
    return {"score": sum(rows) * alpha, "n": len(rows)}


@step
def square(x: int) -> int:
    return x * x


@step
def add(a: int, b: int) -> int:
    return a + b


@step(cache=False)
def champion_of(ctx: StepContext, model: str) -> dict:
    """A step that takes the run's StepContext (filled in by the runner, wherever it runs)."""
    import os

    return {"version": ctx.models.alias_version(model, "champion"), "pid": os.getpid()}
