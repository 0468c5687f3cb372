"""The ``modelloop`` command. A face: it parses, calls :class:`modelloop.Workspace`, renders.

User mistakes (:class:`modelloop.errors.ModelloopError`) end as one line on stderr and a non-zero
exit; anything else is a bug and says how to get its traceback.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import sys

import click

from modelloop import __version__
from modelloop.cli import (
    access,
    alarms,
    api,
    controller,
    data,
    demo,
    endpoint,
    explain,
    features,
    jobs,
    learn,
    loop,
    models,
    monitor,
    quality,
    quickstart,
    runs,
    training,
    transform,
    trigger,
    up,
)
from modelloop.cli.auditing import audit_commands
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.common.exiting import exit_code, exit_now
from modelloop.errors import ModelloopError

EXIT_INTERNAL = 70


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-w",
    "--workspace",
    envvar="MODELLOOP_HOME",
    metavar="DIR",
    help="Workspace folder (default: $MODELLOOP_HOME, else found by walking up from here).",
)
@click.option(
    "--debug", is_flag=True, envvar="MODELLOOP_DEBUG", help="Show tracebacks of internal errors."
)
@click.version_option(__version__, prog_name="modelloop")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, debug: bool) -> None:
    """modelloop keeps machine-learning models fresh in production.

    Ingest data, train and evaluate, register, deploy, monitor and retrain: one loop, one tool.
    """
    ctx.obj = Context(workspace)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--store-url", help="Metadata store URL (default: SQLite inside .modelloop/).")
@click.option(
    "--artifacts-url",
    help="Artifact store location (default: .modelloop/artifacts; s3://… to scale out).",
)
@json_option
def init(directory: str, store_url: str | None, artifacts_url: str | None, as_json: bool) -> None:
    """Create a workspace in DIRECTORY (default: here)."""
    from modelloop.cli import render
    from modelloop.workspace import Workspace

    ws = Workspace.init(directory, store_url=store_url, artifacts_url=artifacts_url)
    if as_json:
        render.print_json(
            {"root": str(ws.root), "store": ws.store.safe_url, "artifacts": ws.config.artifacts_url}
        )
    else:
        render.out.print(f"Created workspace [bold]{ws.root}[/bold]")
        render.out.print(f"  metadata store: {ws.store.safe_url}")
        render.out.print(f"  artifact store: {ws.config.artifacts_url}")


@cli.command()
@click.option("--kind", help="Only events of this kind, e.g. dataset.version_created.")
@click.option("--after", "after_id", type=int, default=0, help="Only events after this id.")
@click.option("-n", "--limit", type=int, default=100, show_default=True)
@click.option("--group", help="How far consumer group GROUP is (e.g. controller): its position, "
              "each member's unacknowledged deliveries, and the events it has not been given.")
@json_option
@pass_ctx
def events(c: Context, kind: str | None, after_id: int, limit: int, group: str | None,
           as_json: bool) -> None:
    """Show the workspace event log."""
    from modelloop.cli import render

    info = None
    if group is not None:
        info = c.local_ws.events_stream.group_info(group)
        if info is None:
            from modelloop.errors import NotFound

            raise NotFound(f"no consumer group {group!r}",
                           hint="the controller's is 'controller', made when it first runs")
        after_id = max(after_id, info["position"])
    rows = c.ws.events(after_id=after_id, kind=kind, limit=limit)
    if as_json:
        render.print_json({"group": info, "events": rows} if info else rows)
        return
    if info:
        pending = ", ".join(f"{m} {n}" for m, n in info["pending"].items()) or "none"
        render.out.print(f"group {group}: handed out up to event {info['position']}; "
                         f"unacknowledged: {pending}")
    render.table(
        "Events not handed out yet" if info else "Events",
        ["id", "time", "kind", "subject"],
        [[e["id"], e["time"], e["kind"], e["subject"]] for e in rows],
    )


#: Every command group and command of the tool, in the order ``--help`` lists them.
COMMANDS = [
    data.data,
    jobs.jobs,
    training.train, training.tune, training.evaluate,
    models.models,
    runs.runs, runs.approve_alias, runs.reject_alias,
    quickstart.quickstart, quickstart.samples,
    quality.baseline, quality.check,
    monitor.monitor,
    alarms.alarms, alarms.metrics,
    loop.loop, demo.demo,
    endpoint.endpoint, endpoint.serve, learn.learn,
    transform.transform,
    controller.controller, up.up, api.api, api.ui,
    trigger.trigger,
    explain.bias, explain.explain,
    features.features,
    access.token, access.audit, access.login,
]  # fmt: skip

for _command in COMMANDS:
    cli.add_command(_command)


def _in_range(number) -> str | None:
    """Why a parsed option value cannot be used, or None: integers end up in 64-bit columns
    (counts, ids, offsets), and 'nan' or 'inf' parse as floats but mean nothing as options."""
    if isinstance(number, int) and not -(2**63) <= number < 2**63:
        return "is out of range (integers must fit in 64 bits)"
    if isinstance(number, float) and not math.isfinite(number):
        return "is not a finite number"
    return None


_CHECKED_TYPES: dict[type, type] = {}


def _checked_type(param_type: click.ParamType) -> click.ParamType:
    """``param_type`` (INT, FLOAT, IntRange …) refusing what :func:`_in_range` refuses. A subclass
    of its own class, so --help still shows its name and range."""
    base = type(param_type)
    if base not in _CHECKED_TYPES:

        def convert(self, value, param, ctx):
            number = base.convert(self, value, param, ctx)
            problem = _in_range(number)
            if problem:
                self.fail(f"{value} {problem}", param, ctx)
            return number

        _CHECKED_TYPES[base] = type(f"Checked{base.__name__}", (base,), {"convert": convert})
    checked = copy.copy(param_type)
    checked.__class__ = _CHECKED_TYPES[base]
    return checked


def _bound_numbers(command: click.Command) -> None:
    """Give every integer and float option of every command the checks of :func:`_in_range`, so
    no command passes a 20-digit count or a NaN to the services (they would fail deep inside, as
    internal errors). One walk here instead of a bounded type at each of the options."""
    for param in command.params:
        numeric = isinstance(param.type, click.types.IntParamType | click.types.FloatParamType)
        if numeric and type(param.type) not in _CHECKED_TYPES.values():
            param.type = _checked_type(param.type)
    for sub in getattr(command, "commands", {}).values():
        _bound_numbers(sub)


_bound_numbers(cli)
audit_commands(cli)


#: OS errors that, carrying a file name, are about a path the user gave, not a bug.
_PATH_ERRORS = (
    PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError, FileExistsError
)
_PATH_ERRNOS = (errno.EROFS, errno.ENOSPC, errno.EINVAL, errno.ENAMETOOLONG, errno.EIO,
                errno.ELOOP, errno.EFBIG)


def _user_path_error(exc: BaseException) -> str | None:
    """One line for an OS error about a path the user gave (a folder where a file was expected,
    a path inside /proc, no permission, a file that is not UTF-8 text), else None."""
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"a file is not {exc.encoding} text (byte {exc.object[exc.start:exc.start + 1]!r} at "
            f"offset {exc.start}) — save it as UTF-8"
        )
    about_a_path = isinstance(exc, _PATH_ERRORS) or (
        isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS
    )
    if about_a_path and exc.filename is not None:
        where = str(exc.filename)
        return f"cannot use {where if len(where) < 200 else where[:200] + '…'}: {exc.strerror or exc}"
    return None


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv) or os.environ.get(
        "MODELLOOP_DEBUG"
    )
    try:
        cli.main(args=argv, prog_name="modelloop", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("modelloop: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ModelloopError as exc:
        msg = exc.message + (f" — {exc.hint}" if exc.hint else "")
        click.echo(f"modelloop: error: {' '.join(msg.split())}", err=True)
        for detail in exc.details:  # other problems found at once: one line each
            click.echo(f"modelloop: error: {' '.join(detail.split())}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("modelloop: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug in modelloop, not the user's mistake …
        message = _user_path_error(exc)  # … unless the OS refused a path the user gave
        if message and not debug:
            click.echo(f"modelloop: error: {' '.join(message.split())}", err=True)
            sys.exit(1)
        if debug:
            raise
        click.echo(
            f"modelloop: internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def console() -> None:
    """The ``modelloop`` console script: :func:`main`, then a quick exit (the answer is printed;
    see :mod:`modelloop.common.exiting`). Tests call :func:`main` in their own process instead."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc)
    exit_now(code)


if __name__ == "__main__":  # pragma: no cover
    console()
