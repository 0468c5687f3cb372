"""``modelloop baseline …`` and ``check``: data quality against a baseline."""

from __future__ import annotations

import json
import sys

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx

#: Exit status of ``check`` when the data has violations (errors exit 1, usage errors 2).
EXIT_VIOLATIONS = 3


def _rows_progress(description: str):
    """Wrap a batch iterator with a rich row-count progress bar on stderr."""

    def wrap(batches, total):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                      console=render.err, transient=True,
                      disable=not render.err.is_terminal) as bar:  # fmt: skip
            task = bar.add_task(description, total=total)
            for b in batches:
                bar.advance(task, b.num_rows)
                yield b

    return wrap


# -- baselines ------------------------------------------------------------------------------------
@click.group()
def baseline() -> None:
    """Baselines: statistics and constraints of a dataset version, the reference for checks."""


def _roles(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        column, sep, role = item.partition("=")
        if not sep or not column or not role:
            raise click.BadParameter(f"{item!r}: use COLUMN=ROLE", param_hint="--role")
        out[column] = role
    return out


@baseline.command("create")
@click.argument("dataset_ref", metavar="DATASET@VERSION")
@click.option("--name", help="Baseline name (default: DATASET-vVERSION).")
@click.option("--categorical", multiple=True, help="Treat this numeric column as categories.")
@click.option("--target", help="The label column (checked where data has it; traffic has none).")
@click.option("--role", "roles", multiple=True, metavar="COLUMN=ROLE",
              help="A column's role: feature, target, identifier, time or ignored "
                   "(default: inferred; identifiers and time columns are not compared).")
@click.option("--force", is_flag=True, help="Recompute the baseline if it exists already.")
@json_option
@pass_ctx
def baseline_create(c: Context, dataset_ref: str, name, categorical, target, roles, force,
                    as_json: bool) -> None:  # fmt: skip
    """Profile DATASET@VERSION in one pass and store its baseline (training makes one for every
    version it trains on: then this shows it)."""
    rec = c.ws.monitoring.baselines.create(
        dataset_ref, name=name, categorical=list(categorical), target=target,
        roles=_roles(roles), force=force, progress=_rows_progress(f"profiling {dataset_ref}"),
    )  # fmt: skip
    if as_json:
        return render.print_json(rec)
    if rec.get("existed"):
        render.note(f"baseline {rec['name']} of {rec['ref']} exists already (created "
                    f"{rec['created_at']}); --force recomputes it")  # fmt: skip
        return _show_baseline(c, rec["name"])
    verb = "Recomputed" if force else "Created"
    render.out.print(f"{verb} baseline [bold]{rec['name']}[/bold] of {rec['ref']}: "
                     f"{rec['n_rows']} rows, {rec['n_columns']} columns")  # fmt: skip


@baseline.command("list")
@json_option
@pass_ctx
def baseline_list(c: Context, as_json: bool) -> None:
    """List stored baselines."""
    rows = c.ws.monitoring.baselines.list()
    if as_json:
        return render.print_json(rows)
    render.table("Baselines", ["name", "dataset", "source", "rows", "columns", "created"],
                 [[b["name"], b["ref"] or "-", b["source"], b["n_rows"], b["n_columns"],
                   b["created_at"]] for b in rows])  # fmt: skip


@baseline.command("show")
@click.argument("ref")
@json_option
@pass_ctx
def baseline_show(c: Context, ref: str, as_json: bool) -> None:
    """Show a baseline's per-column statistics and constraints (REF: name or DATASET@VERSION)."""
    if as_json:
        b = c.ws.monitoring.baselines.load(ref)
        return render.print_json(b.to_sagemaker()[0] | {"constraints": b.to_sagemaker()[1]})
    _show_baseline(c, ref)


def _show_baseline(c: Context, ref: str) -> None:
    b = c.ws.monitoring.baselines.load(ref)
    rows = []
    for name, p in b.columns.items():
        con = b.constraint(name)
        if p.kind == "numeric":
            q = p.quantiles([0.5]) if p.n else [None]
            stats = (f"mean {p.mean:.4g}, std {p.std:.4g}, min {p.min:.4g}, median {q[0]:.4g}, "
                     f"max {p.max:.4g}") if p.n else "no values"  # fmt: skip
        elif not p.counts:
            stats = f"{p.n_distinct} distinct values"
        else:
            top = sorted(p.counts.items(), key=lambda kv: -kv[1])[:3]
            stats = f"{len(p.counts)} categories; top: " + ", ".join(f"{k} ({v})" for k, v in top)
        rows.append([name, b.role(name), p.kind, p.n, p.missing, f"{con['completeness']:.4g}",
                     stats])  # fmt: skip
    rows += [[name, b.role(name), "-", "-", "-", "-", "not profiled"] for name in b.skipped]
    render.table(f"Baseline {ref} ({b.n_rows} rows)",
                 ["column", "role", "kind", "present", "missing", "completeness", "statistics"],
                 rows)  # fmt: skip


@baseline.command("export")
@click.argument("ref")
@click.argument("folder", type=click.Path(file_okay=False))
@pass_ctx
def baseline_export(c: Context, ref: str, folder: str) -> None:
    """Write REF as SageMaker statistics.json and constraints.json into FOLDER."""
    paths = c.ws.monitoring.baselines.export(ref, folder)
    render.out.print("Wrote " + ", ".join(str(p) for p in paths))


@baseline.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True))
@json_option
@pass_ctx
def baseline_import(c: Context, name: str, path: str, as_json: bool) -> None:
    """Store a baseline NAME from SageMaker files (a folder or statistics.json) or modelloop JSON."""
    rec = c.ws.monitoring.baselines.import_(name, path)
    if as_json:
        return render.print_json(rec)
    render.out.print(f"Imported baseline [bold]{rec['name']}[/bold] ({rec['source']}): "
                     f"{rec['n_rows']} rows, {rec['n_columns']} columns")  # fmt: skip


# -- check ----------------------------------------------------------------------------------------
def load_check_config(path: str | None) -> dict | None:
    """A check configuration file (YAML or JSON) as a dict; None when no path is given."""
    if not path:
        return None
    import yaml

    from modelloop.errors import InvalidInput

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"cannot read --config {path}: {reason or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"--config {path} is not valid YAML or JSON: {exc}") from None


@click.command()
@click.argument("data", required=False, metavar="DATASET@VERSION|FILE")
@click.option("--baseline", "baseline_ref", required=True,
              help="Baseline name, DATASET@VERSION, or a folder/file of baseline JSON.")
@click.option("--endpoint", help="Check this endpoint's captured traffic instead of DATA.")
@click.option("--variant", help="Only this variant's traffic.")
@click.option("--since", help="Captured traffic from (1h, 7d, ISO time).")
@click.option("--until", help="Captured traffic until (ISO time; default now).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Check configuration (YAML/JSON: methods, thresholds, per-column settings; "
                   "see the README).")
@click.option("--exclude", multiple=True, help="Baseline column not to check (repeatable).")
@click.option("--violations-out", type=click.Path(dir_okay=False),
              help="Also write SageMaker's constraint_violations.json here.")
@json_option
@pass_ctx
def check(c: Context, data, baseline_ref, endpoint, variant, since, until, config_path, exclude,
          violations_out, as_json: bool) -> None:  # fmt: skip
    """Check data against a baseline: violations, drift table and verdict.

    Captured traffic (--endpoint) is compared on the served model's input columns. Exits 3 when
    there are violations, 0 when the data is fine (or too small to judge: "not enough data").
    """
    if bool(data) == bool(endpoint):
        raise click.UsageError("give DATA (a dataset version or file) or --endpoint EP")
    report = c.ws.monitoring.check(data, baseline_ref, load_check_config(config_path),
                                   since=since, until=until, endpoint=endpoint,
                                   variant=variant, exclude=list(exclude))  # fmt: skip
    if violations_out:
        render.write_output(violations_out, json.dumps(report.to_sagemaker_violations(), indent=2))
    if as_json:
        render.print_json(report.to_dict())
    else:
        print_check(report.to_dict())
    if report.violations:
        sys.exit(EXIT_VIOLATIONS)


def print_check(d: dict) -> None:
    v = d["verdict"]
    if d["violations"]:
        render.table(f"Violations ({len(d['violations'])})", ["feature", "check", "description"],
                     [[x["feature_name"], x["constraint_check_type"], x["description"]]
                      for x in d["violations"]])  # fmt: skip
    if d["drift"]:
        render.table("Drift", ["column", "kind", "method", "value", "threshold", "p adj.", "drift"],
                     [[r["column"], r["kind"], r["method"], r["value"], r["threshold"],
                       r["p_adjusted"], "[red]yes[/red]" if r["drifted"] else "no"]
                      for r in d["drift"]])  # fmt: skip
    verdict = "[green]OK[/green]" if v["ok"] else "[red]ISSUES[/red]"
    if not v.get("enough_data", True):
        render.note(f"not enough data: {d['n_rows']} rows are too few to compare distributions "
                    "(min_rows); only the columns were checked")  # fmt: skip
    elif v.get("not_enough_data"):
        render.note("not enough data to compare: " + ", ".join(v["not_enough_data"]))
    render.out.print(
        f"Verdict: {verdict} — {d['n_rows']} rows, {v['n_violations']} violation(s), "
        f"{len(v['drifted_columns'])} of {v['n_columns']} columns drift"
        f"{' (dataset drift)' if v['dataset_drift'] else ''}"
        f"{' (target drift)' if v.get('target_drift') else ''}"
    )
