"""``modelloop token …``, ``modelloop audit`` and ``modelloop login``: API tokens with roles,
the audit log, and the credentials the CLI uses against a remote server."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx

ROLE_CHOICE = click.Choice(("viewer", "operator", "admin"))


@click.group()
def token() -> None:
    """API tokens for the control plane and token-protected endpoints. Roles: viewers read;
    operators ingest, train, run loops, deploy and roll back; admins approve models and manage
    tokens and triggers."""


@token.command("create")
@click.option("--name", required=True, help="A name for who uses it, e.g. ci (shown in the audit log).")
@click.option("--role", type=ROLE_CHOICE, default="viewer", show_default=True)
@click.option("--expires", metavar="DURATION", help="Expire after e.g. 90d, 12h (default: never).")
@json_option
@pass_ctx
def token_create(c: Context, name: str, role: str, expires: str | None, as_json: bool) -> None:
    """Create a token. It is printed once: store it now (it is kept only as a hash)."""
    made = c.ws.tokens.create(name, role=role, expires=expires)
    if as_json:
        render.print_json(made)
        return
    render.out.print(made["token"])
    until = f", expires {render.fmt(made['expires_at'])}" if made["expires_at"] else ""
    render.err.print(f"token {made['name']!r} (id {made['id']}, role {made['role']}{until}): "
                     "shown only this once, store it now")  # fmt: skip


@token.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Revoked tokens too.")
@json_option
@pass_ctx
def token_list(c: Context, include_revoked: bool, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    rows = c.ws.tokens.list(include_revoked=include_revoked)
    if as_json:
        render.print_json(rows)
        return
    render.table("Tokens", ["id", "name", "role", "state", "created", "by", "expires", "last used"],
                 [[t["id"], t["name"], t["role"], t["state"], t["created_at"], t["created_by"],
                   t["expires_at"], t["last_used_at"]] for t in rows])  # fmt: skip


@token.command("revoke")
@click.argument("token_ref", metavar="NAME|ID")
@json_option
@pass_ctx
def token_revoke(c: Context, token_ref: str, as_json: bool) -> None:
    """Revoke a token: it stops working at once here, within seconds on every server."""
    row = c.ws.tokens.revoke(token_ref)
    if as_json:
        render.print_json(row)
    else:
        render.out.print(f"revoked token {row['name']!r} (id {row['id']})")


@click.command()
@click.option("--since", help="From (1d, 12h, ISO time).")
@click.option("--until", help="Before (1d, 12h, ISO time).")
@click.option("--actor", help="Only this actor (a token's name, or user@host).")
@click.option("--action", help="Only this action, or a prefix ending in * (models.*).")
@click.option("--source", type=click.Choice(("api", "cli", "sdk")))
@click.option("-n", "--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@json_option
@pass_ctx
def audit(c: Context, since, until, actor, action, source, limit: int, offset: int,
          as_json: bool) -> None:  # fmt: skip
    """Show the audit log: every mutating call, from the API and the local CLI, newest first."""
    rows = c.ws.audit.list(since=since, until=until, actor=actor, action=action, source=source,
                           limit=limit, offset=offset)  # fmt: skip
    if as_json:
        render.print_json(rows)
        return
    render.table("Audit log", ["id", "at", "actor", "source", "action", "subject", "outcome"],
                 [[r["id"], r["at"], r["actor"], r["source"], r["action"], r["subject"],
                   r["outcome"]] for r in rows])  # fmt: skip


@click.command()
@click.argument("url")
@click.option("--token", "token_text", prompt="API token", hide_input=True,
              help="The token (asked for, unechoed, when not given).")  # fmt: skip
def login(url: str, token_text: str) -> None:
    """Keep URL and a token for the CLI (used when $MODELLOOP_TOKEN is unset), in a file only
    you can read."""
    from modelloop.access.tokens import TOKEN_RE
    from modelloop.config import save_credentials
    from modelloop.errors import InvalidInput

    url = url.strip().rstrip("/")
    if not url.startswith(("https://", "http://")) or len(url) < 10:
        raise InvalidInput(f"{url!r} is not a server URL", hint="e.g. https://modelloop.example:8090")
    token_text = token_text.strip()
    if not TOKEN_RE.match(token_text):
        raise InvalidInput("that is not a modelloop API token",
                           hint="tokens look like ml_<id>_<secret> (modelloop token create)")  # fmt: skip
    path = save_credentials(url, token_text)
    render.out.print(f"saved the server and token for {url} in {path}")
