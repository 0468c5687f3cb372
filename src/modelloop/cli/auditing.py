"""The local CLI's audit records: every command that changes a workspace appends one record
(``cli`` source, the OS user as actor, its parameters with secrets redacted, how it ended).

A command run against a remote server is recorded by the server, not here: only a command that
opened a local :class:`~modelloop.workspace.Workspace` is recorded. Commands that only read, and
the long-running processes (servers, the controller, the demo), are not recorded.
"""

from __future__ import annotations

import functools
import os

import click

#: Commands (their paths under ``modelloop``) that change nothing in a workspace.
READ_ONLY = frozenset({
    "events", "samples", "check", "explain", "audit", "login", "init",
    "data list", "data show", "data head", "data quarantine",
    "jobs list", "jobs show", "jobs logs", "jobs artifacts", "jobs download", "jobs report",
    "jobs compare", "jobs search",
    "models list", "models show", "models versions", "models history", "models export",
    "runs list", "runs show", "runs explain", "runs logs", "runs report",
    "baseline list", "baseline show", "baseline export",
    "monitor list", "monitor show", "monitor report",
    "alarms list", "alarms history", "metrics list", "metrics show",
    "loop validate", "loop list", "loop status",
    "endpoint list", "endpoint show", "endpoint stats",
    "trigger list", "trigger show", "trigger history",
    "features list", "features show", "features history", "features get", "bias",
    "token list",
})  # fmt: skip
#: Processes that run until stopped; what they do is recorded by the services they drive.
LONG_RUNNING = frozenset({"serve", "api serve", "controller", "up", "learn", "demo",
                          "monitor scheduler", "quickstart", "data stream"})  # fmt: skip


def audit_commands(group: click.Group, prefix: str = "") -> None:
    """Wrap the callback of every command under ``group`` that changes a workspace so that it
    leaves one audit record, whether it succeeds or fails."""
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            audit_commands(command, path + " ")
        elif path not in READ_ONLY and path not in LONG_RUNNING and command.callback:
            command.callback = _recorded(path, command, command.callback)


def _recorded(path: str, command: click.Command, callback):
    @functools.wraps(callback)
    def run(*args, **kwargs):
        error: BaseException | None = None
        try:
            return callback(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _record(path, command, kwargs, error)

    return run


def _record(path: str, command: click.Command, params: dict, error: BaseException | None) -> None:
    from modelloop.cli.context import Context
    from modelloop.workspace import Workspace

    ctx = click.get_current_context(silent=True)
    c = ctx.find_object(Context) if ctx is not None else None
    ws = getattr(c, "_ws", None)
    if not isinstance(ws, Workspace):  # never opened, or a remote workspace: the server records
        return
    if isinstance(error, SystemExit | click.exceptions.Exit) and not _exit_code(error):
        error = None
    arguments = {k: os.fspath(v) if isinstance(v, os.PathLike) else v
                 for k, v in params.items() if not isinstance(v, Context)}  # fmt: skip
    first = next((p.name for p in command.params if isinstance(p, click.Argument)), None)
    subject = arguments.get(first) if first else None
    if isinstance(subject, list | tuple):
        subject = ", ".join(map(str, subject)) or None
    try:
        from modelloop.access.audit import outcome_of, record
        from modelloop.config import current_actor

        record(ws.store, actor=current_actor(), actor_kind="user", action=path.replace(" ", "."),
               subject=None if subject is None else str(subject), arguments=arguments,
               outcome=outcome_of(error), source="cli")  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the command ran; say the record is missing
        click.echo(f"modelloop: warning: the audit record of '{path}' was not written: {exc}",
                   err=True)  # fmt: skip


def _exit_code(exc) -> int:
    code = getattr(exc, "exit_code", getattr(exc, "code", 1))
    return code if isinstance(code, int) else int(code is not None)
