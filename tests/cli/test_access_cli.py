"""``modelloop token``, ``audit`` and ``login``, and the local CLI's audit records."""

from __future__ import annotations

import os
import stat

from modelloop.access.tokens import TOKEN_RE


def test_tokens_are_made_listed_revoked_and_every_change_is_audited(cli, local_workspace):
    ws = ["-w", str(local_workspace.root)]
    env = {"MODELLOOP_USER": "ana"}
    made = cli(*ws, "token", "create", "--name", "ci", "--role", "operator", "--expires", "90d",
               "--json", env=env).json()  # fmt: skip
    assert TOKEN_RE.match(made["token"]) and made["role"] == "operator"
    plain = cli(*ws, "token", "create", "--name", "bot", env=env)
    assert TOKEN_RE.match(plain.out.strip()) and "shown only this once" in plain.err
    listed = cli(*ws, "token", "list", "--json").json()
    assert [t["name"] for t in listed] == ["ci", "bot"] and not any("token" in t for t in listed)
    assert "revoked token 'ci'" in cli(*ws, "token", "revoke", "ci", env=env).out
    failed = cli(*ws, "token", "revoke", "nobody", env=env, check=False)
    assert failed.code == 1 and "no token 'nobody'" in failed.err
    cli(*ws, "data", "list")  # reads leave no record
    records = cli(*ws, "audit", "--json", "--source", "cli").json()
    assert [(r["action"], r["subject"], r["outcome"][:15]) for r in records] == [
        ("token.revoke", "nobody", "error: NotFound"),
        ("token.revoke", "ci", "ok"),
        ("token.create", None, "ok"),
        ("token.create", None, "ok"),
    ]
    assert {(r["actor"], r["actor_kind"]) for r in records} == {("ana", "user")}
    assert records[-1]["arguments"] == {"name": "ci", "role": "operator", "expires": "90d",
                                        "as_json": True}  # fmt: skip
    assert made["token"] not in str(records)
    table = cli(*ws, "audit", "--actor", "ana", "--action", "token.*", "--since", "1h").out
    assert "token.revoke" in table and "error: NotFound" in table
    assert cli(*ws, "audit", "--json", "--actor", "someone").json() == []
    bad = cli(*ws, "audit", "--since", "whenever", check=False)
    assert bad.code == 1 and "cannot read 'whenever'" in bad.err


def test_login_keeps_url_and_token_for_this_user_only(cli, tmp_path, monkeypatch):
    from modelloop.config import load_credentials

    path = tmp_path / "conf" / "credentials"
    env = {"MODELLOOP_CREDENTIALS": str(path)}
    token = "ml_7_" + "x" * 43
    out = cli("login", "https://ml.example:8090/", "--token", token, env=env).out
    assert str(path) in out and token not in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("MODELLOOP_CREDENTIALS", str(path))
    assert load_credentials() == {"url": "https://ml.example:8090", "token": token}
    from modelloop.remote.client import settings  # what the remote CLI then uses

    assert settings({"MODELLOOP_URL": "https://ml.example:8090", **env}) == (
        "https://ml.example:8090", token)
    assert settings({"MODELLOOP_URL": "https://other:1", **env}) == ("https://other:1", None)
    os.chmod(path, 0o644)
    from modelloop.errors import ConfigError

    try:
        load_credentials()
        raise AssertionError("a credentials file others can read was accepted")
    except ConfigError as exc:
        assert "chmod 600" in str(exc)
    for url, tok, message in (("ftp://x", token, "not a server URL"),
                              ("https://ml.example", "secret", "not a modelloop API token")):  # fmt: skip
        result = cli("login", url, "--token", tok, env=env, check=False)
        assert result.code == 1 and message in result.err


def test_every_command_the_audit_skips_exists():
    """Commands are audited unless named as reads or long-running processes: a name there that
    is no command (a typo, a rename) would be a read nobody meant, so none may be stale."""
    from modelloop.cli.auditing import LONG_RUNNING, READ_ONLY
    from modelloop.cli.main import cli

    def paths(group, prefix=""):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from paths(command, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}"

    commands = set(paths(cli))
    assert not (READ_ONLY | LONG_RUNNING) - commands, (READ_ONLY | LONG_RUNNING) - commands
    assert {"token create", "token revoke", "models approve", "data ingest"} <= commands - READ_ONLY
