"""``modelloop models …``: the model registry."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx

reason_option = click.option("--reason", help="Why (kept in the model's history).")
trust_option = click.option(
    "--trust-pickle", is_flag=True,
    help="Trust the code the model files hold (a pickle, an MLflow loader): loading them runs "
         "whatever their author wrote. Needs --reason; recorded with your OS user.")


@click.group()
def models() -> None:
    """Registered models: versions, approval, aliases, history, rollback."""


@models.command()
@click.argument("name")
@click.option("--job", "job_id", help="Register the model a training or tuning job produced.")
@click.option("--package", "package_dir", type=click.Path(file_okay=False), help="Register a model package folder.")
@click.option("--description")
@trust_option
@reason_option
@json_option
@pass_ctx
def register(c: Context, name: str, job_id: str | None, package_dir: str | None, description: str | None,
             trust_pickle: bool, reason: str | None, as_json: bool) -> None:
    """Register a new version of model NAME (from --job or --package); it starts pending.

    A package holding code (a pickle) registers only with --trust-pickle --reason '…'."""
    if bool(job_id) == bool(package_dir):
        raise click.UsageError("give exactly one of --job JOB or --package DIR")
    if job_id:
        if trust_pickle:
            raise click.UsageError("--trust-pickle is for --package: a job's own model is trusted")
        record = c.ws.models.register_from_job(name, job_id, description=description)
    else:
        record = c.ws.models.register(name, package_dir, description=description,
                                      trust_pickle=trust_pickle, reason=reason)
    if as_json:
        render.print_json(record)
    else:
        render.out.print(f"Registered [bold]{record['ref']}[/bold] ({record['flavor']}, status {record['status']})")


@models.command("list")
@json_option
@pass_ctx
def list_(c: Context, as_json: bool) -> None:
    """List registered models."""
    rows = c.ws.models.list()
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.note("No models yet. Register one with: modelloop models register NAME --job JOB")
    else:
        render.table("Models", ["name", "latest", "aliases", "created"],
                     [[m["name"], m["latest_version"], ", ".join(f"{a}→{v}" for a, v in m["aliases"].items()),
                       m["created_at"]] for m in rows])


@models.command()
@click.argument("ref")
@json_option
@pass_ctx
def show(c: Context, ref: str, as_json: bool) -> None:
    """Everything about a version (NAME, NAME@3, NAME@champion): status, metrics, signature, lineage."""
    info = c.ws.models.describe(ref)
    if as_json:
        render.print_json(info)
        return
    v = info["version"]
    render.out.print(f"[bold]{v['ref']}[/bold]  status [bold]{v['status']}[/bold]"
                     + (f" by {v['status_by']} ({v['status_reason']})" if v.get("status_by") else "")
                     + (f"  aliases: {', '.join(v['aliases'])}" if v["aliases"] else ""))
    m = v["manifest"]
    render.out.print(f"flavor {v['flavor']}, task {v.get('task') or '-'}, registered {render.fmt(v['created_at'])} "
                     f"by {v.get('created_by') or '-'}; package {v['package_hash'][:12]}")
    if not v.get("holds_code"):
        render.out.print("code: none (its files load without running code)")
    elif v.get("trusted_by"):
        render.out.print(f"code: yes, trusted by {v['trusted_by']} ({v.get('trusted_reason') or '-'})")
    else:
        render.out.print(f"code: yes, NOT trusted: it will not load until "
                         f"'modelloop models trust {v['ref']} --reason …'")
    fp = v.get("fast_path") or {}
    if fp.get("path") == "plan":
        render.out.print(f"serving path: fast plan ({fp.get('estimator')}; equal to the pipeline "
                         f"on {fp.get('probe_rows')} probe rows)")
    else:
        render.out.print(f"serving path: plain pipeline ({fp.get('reason') or '-'})")
    if m.get("metrics"):
        render.table("Metrics", ["metric", "value"], [[k, val] for k, val in m["metrics"].items()
                                                       if not isinstance(val, dict | list)])
    sig = (m.get("signature") or {}).get("inputs") or m.get("signature", {}).get("columns") or []
    if sig:
        render.table("Input signature", ["column", "type", "required"],
                     [[s.get("name"), s.get("type"), not s.get("optional", False)] for s in sig])
    lin = info["lineage"]
    if lin.get("job"):
        render.out.print(f"trained by job {lin['job']['id']} ({lin['job']['kind']})"
                         + (f", split {lin['split']}" if lin.get("split") else ""))
    for d in lin.get("datasets", []):
        render.out.print(f"data: {d['ref']} (content {d.get('content_hash', '')[:12]})")
        for s in d["sources"]:
            render.out.print(f"   ← {s['path']} ({s['rows']:,} rows, sha256 {s['sha256'][:12]})")
    dep = info.get("deployments") or []
    render.out.print("deployed: " + (", ".join(dep) if dep else ("yes (history)" if v.get("deployed_at") else "never")))


@models.command()
@click.argument("name")
@json_option
@pass_ctx
def versions(c: Context, name: str, as_json: bool) -> None:
    """List the versions of model NAME."""
    rows = c.ws.models.versions(name)
    if as_json:
        render.print_json(rows)
        return
    render.table(f"Versions of {name}", ["version", "status", "aliases", "flavor", "code", "job", "created"],
                 [[v["version"], v["status"], ", ".join(v["aliases"]), v["flavor"],
                   ("trusted" if v.get("trusted_by") else "NOT trusted") if v.get("holds_code") else "-",
                   v["job_id"], v["created_at"]] for v in rows])


@models.command()
@click.argument("ref")
@reason_option
@click.option("--force", is_flag=True, help="Approve even a rejected version (needs --reason).")
@json_option
@pass_ctx
def approve(c: Context, ref: str, reason: str | None, force: bool, as_json: bool) -> None:
    """Approve a model version."""
    v = c.ws.models.approve(ref, reason=reason, force=force)
    render.print_json(v) if as_json else render.out.print(f"{v['ref']}: approved")


@models.command()
@click.argument("ref")
@reason_option
@json_option
@pass_ctx
def reject(c: Context, ref: str, reason: str | None, as_json: bool) -> None:
    """Reject a model version."""
    v = c.ws.models.reject(ref, reason=reason)
    render.print_json(v) if as_json else render.out.print(f"{v['ref']}: rejected")


@models.command()
@click.argument("name")
@click.argument("alias")
@click.argument("version")
@reason_option
@click.option("--force", is_flag=True, help="Point a gated alias (champion) at a version that is not "
              "approved, or any alias at a rejected one; needs --reason.")
@pass_ctx
def alias(c: Context, name: str, alias: str, version: str, reason: str | None, force: bool) -> None:
    """Point ALIAS (e.g. champion) of model NAME at VERSION (a number).

    Gated aliases ([registry] approval_gated_aliases, default champion) take approved versions only."""
    v = c.ws.models.set_alias(name, alias, version, reason=reason, force=force)
    render.out.print(f"{name}@{alias} → {v['ref']}")


@models.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why you trust it (kept in the model's history).")
@pass_ctx
def trust(c: Context, ref: str, reason: str) -> None:
    """Trust the code version REF's files hold, so it can load (recorded with your OS user)."""
    v = c.ws.models.trust(ref, reason=reason)
    render.out.print(f"{v['ref']}: trusted by {v['trusted_by']}")


@models.command()
@click.argument("name")
@click.argument("alias")
@reason_option
@pass_ctx
def unalias(c: Context, name: str, alias: str, reason: str | None) -> None:
    """Remove ALIAS from model NAME."""
    c.ws.models.remove_alias(name, alias, reason=reason)
    render.out.print(f"removed {name}@{alias}")


@models.command()
@click.argument("name")
@click.option("--alias", default="champion", show_default=True)
@reason_option
@pass_ctx
def rollback(c: Context, name: str, alias: str, reason: str | None) -> None:
    """Move an alias (champion) back to the version it held before."""
    v = c.ws.models.rollback(name, alias, reason=reason)
    render.out.print(f"{name}@{alias} rolled back → {v['ref']}")


@models.command()
@click.argument("name")
@json_option
@pass_ctx
def history(c: Context, name: str, as_json: bool) -> None:
    """Every status change and alias move of model NAME."""
    rows = c.ws.models.history(name)
    if as_json:
        render.print_json(rows)
        return
    render.table(f"History of {name}", ["time", "action", "version", "alias", "from", "by", "reason"],
                 [[h["time"], h["action"], h["version"], h["alias"], h["from_version"], h["actor"], h["reason"]]
                  for h in rows])


@models.command()
@click.argument("ref")
@reason_option
@pass_ctx
def delete(c: Context, ref: str, reason: str | None) -> None:
    """Delete a version that was never deployed and has no alias."""
    c.ws.models.delete(ref, reason=reason)
    render.out.print(f"deleted {ref}")


@models.command("export")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["mlflow", "package"]), default="mlflow",
              show_default=True, help="mlflow: an MLflow model folder; package: modelloop's own.")
@pass_ctx
def export(c: Context, ref: str, dest: str, fmt: str) -> None:
    """Write version REF to folder DEST (e.g. as an MLflow model for mlflow.pyfunc.load_model)."""
    path = c.ws.models.export(ref, dest, format=fmt)
    render.out.print(f"exported {c.ws.models.get(ref)['ref']} as {fmt} to {path}")


@models.command("import")
@click.argument("name")
@click.argument("folder", metavar="FOLDER|URI", type=click.Path(file_okay=False))
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]))
@click.option("--description")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
              help="The MLflow tracking store a runs:/ or models:/ URI is read from "
                   "(default: $MLFLOW_TRACKING_URI).")
@trust_option
@reason_option
@json_option
@pass_ctx
def import_(c: Context, name: str, folder: str, task: str | None, description: str | None,
            tracking_uri: str | None, trust_pickle: bool, reason: str | None,
            as_json: bool) -> None:
    """Register an MLflow model as a new version of model NAME: the folder holding its MLmodel,
    or its URI in an MLflow tracking store (runs:/RUN_ID/model, models:/NAME/VERSION, the
    models:/m-ID that mlflow.sklearn.log_model returns).

    MLflow sklearn pickles and pyfunc models are code: they import only with --trust-pickle
    --reason '…'; nothing is unpickled before. A modelloop export imports as it was."""
    record = c.ws.models.import_mlflow(name, folder, task=task, description=description,
                                       trust_pickle=trust_pickle, reason=reason,
                                       tracking_uri=tracking_uri)
    if as_json:
        render.print_json(record)
    else:
        render.out.print(f"Registered [bold]{record['ref']}[/bold] ({record['flavor']}, status "
                         f"{record['status']})")
