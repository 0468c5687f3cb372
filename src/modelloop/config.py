"""Workspace configuration: where a workspace is, and which backends it uses.

A workspace is a folder holding ``modelloop.toml``. Its ``[store]`` and ``[artifacts]`` URLs pick
the backends: SQLite and a local folder by default, ``postgresql://`` and ``s3://`` to scale out.
Environment variables override the file so that one config can move between machines.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from modelloop.errors import ConfigError, NotFound

CONFIG_FILE = "modelloop.toml"
STATE_DIR = ".modelloop"

#: Environment variables, in the order a workspace is looked for / backends are overridden.
ENV_HOME = "MODELLOOP_HOME"
ENV_STORE_URL = "MODELLOOP_STORE_URL"
ENV_ARTIFACTS_URL = "MODELLOOP_ARTIFACTS_URL"
#: The event stream ([events] url): empty for the metadata store itself, or redis://host:port/db.
ENV_EVENTS_URL = "MODELLOOP_EVENTS_URL"
EVENTS_URL_SCHEMES = ("redis", "rediss", "unix")
#: How jobs run: "warm" (each in a worker process forked from the workspace's preloaded server,
#: the default), "process" (each in a fresh interpreter) or "inline" (in the caller's thread: a
#: test and development setting); see modelloop.training.job_runners and warm_workers.
ENV_JOB_RUNNER = "MODELLOOP_JOB_RUNNER"
#: Where train and tune jobs run: "local" (on this machine, as the runner says) or "ray" (Ray
#: tasks on the cluster at $RAY_ADDRESS, else a local Ray; see modelloop.training.ray_jobs).
ENV_JOB_EXECUTOR = "MODELLOOP_JOB_EXECUTOR"
JOB_EXECUTORS = ("local", "ray")

DEFAULT_CONFIG = """\
# modelloop workspace configuration.
# Relative paths are relative to this file's folder.

[store]
# Metadata store: SQLite by default; e.g. "postgresql://user:pass@host:5432/db" to scale out.
url = "sqlite:///.modelloop/metadata.db"

[artifacts]
# Artifact store: a local folder by default; e.g. "s3://bucket/prefix" to scale out.
url = ".modelloop/artifacts"

# Options passed to the artifact filesystem (fsspec), e.g. for an S3-compatible server:
# [artifacts.options]
# endpoint_url = "http://127.0.0.1:9000"

# How jobs run: "warm" (each in a worker process of its own, forked from a server that has
# already imported the libraries; the default), "process" (each in a fresh interpreter) or
# "inline" (in the calling process: quicker for tests and development, no isolation):
# [jobs]
# runner = "warm"
# Where train and tune jobs run: "local" (this machine) or "ray" (the Ray cluster at
# $RAY_ADDRESS, else a local Ray; tuning trials in parallel; same records and logs):
# executor = "local"

# Aliases that may point only at approved model versions (unless forced with a reason):
# [registry]
# approval_gated_aliases = ["champion"]
# four_eyes = true          # who registered a version may not approve it

# The event stream the controller reads: the metadata store by default (url = ""), or Redis
# Streams to scale out, fed from the store (pip install 'modelloop[redis]'):
# [events]
# url = "redis://127.0.0.1:6379/0"

# The control-plane API (modelloop api serve): every route needs a token (modelloop token
# create) unless auth = "none", which is allowed on a loopback address only; HTTPS with a
# certificate and its key; limits per request and per token:
# [api]
# host = "127.0.0.1"
# port = 8090
# tls_cert = "cert.pem"
# tls_key = "key.pem"
# max_body_bytes = 1048576
# max_upload_bytes = 17179869184
# rate_limit = 50        # requests a second per token, bursts of rate_burst
"""


@dataclass
class Config:
    """The resolved configuration of one workspace."""

    root: Path
    store_url: str
    artifacts_url: str
    artifacts_options: dict = field(default_factory=dict)
    #: Aliases that point only at approved versions unless forced ([registry] in the file).
    gated_aliases: tuple[str, ...] = ("champion",)
    #: Approval needs a second person: the actor who registered a version may not approve it
    #: ([registry] four_eyes).
    four_eyes: bool = False
    #: How jobs run ([jobs] runner, or $MODELLOOP_JOB_RUNNER): "warm", "process" or "inline".
    job_runner: str = "warm"
    #: Where train and tune jobs run ([jobs] executor, or $MODELLOOP_JOB_EXECUTOR): "local" or
    #: "ray"; other jobs (evaluate, transform, monitor) run locally unless told.
    job_executor: str = "local"
    #: The event stream ([events] url, or $MODELLOOP_EVENTS_URL): "" for the metadata store,
    #: "redis://host:port/db" for Redis Streams (modelloop.events.open_stream).
    events_url: str = ""
    #: The features' online store ([features] online_store): "" for SQLite in the workspace,
    #: "redis://host:port/db" for Redis (modelloop.features.online_store).
    features_online_url: str = ""
    #: The control-plane API's table ([api] in the file), checked by ``modelloop.api.settings``.
    api: dict = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """Local folder for the embedded backends and scratch space (always on this machine)."""
        return self.root / STATE_DIR

    @classmethod
    def load(cls, root: Path) -> Config:
        path = root / CONFIG_FILE
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(
                f"no {CONFIG_FILE} in {root}", hint="run 'modelloop init' there first"
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        store = raw.get("store", {})
        artifacts = raw.get("artifacts", {})
        if not isinstance(store, dict) or not isinstance(artifacts, dict):
            raise ConfigError(f"{path}: [store] and [artifacts] must be tables")
        for table, key, want in (("store", "url", str), ("artifacts", "url", str),
                                 ("artifacts", "options", dict), ("events", "url", str)):
            section = raw.get(table, {})
            if not isinstance(section, dict):
                raise ConfigError(f"{path}: [{table}] must be a table")
            value = section.get(key)
            if value is not None and not isinstance(value, want):
                raise ConfigError(
                    f"{path}: [{table}] {key} = {value!r} must be a "
                    + ("string" if want is str else "table"),
                    hint='e.g. url = "s3://bucket/prefix"' if key == "url" else None,
                )
        store_url = (
            os.environ.get(ENV_STORE_URL) or store.get("url") or "sqlite:///.modelloop/metadata.db"
        )
        artifacts_url = (
            os.environ.get(ENV_ARTIFACTS_URL) or artifacts.get("url") or ".modelloop/artifacts"
        )
        options = dict(artifacts.get("options", {}))
        return cls(
            root=root,
            store_url=_resolve_store_url(store_url, root),
            artifacts_url=_resolve_location(artifacts_url, root),
            artifacts_options=options,
            gated_aliases=_gated_aliases(raw.get("registry", {}), path),
            four_eyes=_four_eyes(raw.get("registry", {}), path),
            job_runner=_job_runner(raw.get("jobs", {}), path),
            job_executor=_job_executor(raw.get("jobs", {}), path),
            events_url=_events_url(raw.get("events", {}), path),
            features_online_url=_features_online_url(raw.get("features", {}), path),
            api=_table(raw, "api", path),
        )


def _table(raw: dict, name: str, path: Path) -> dict:
    section = raw.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return dict(section)


def _gated_aliases(registry, path: Path) -> tuple[str, ...]:
    gated = registry.get("approval_gated_aliases", ["champion"]) if isinstance(registry, dict) else None
    if not isinstance(gated, list) or not all(isinstance(a, str) for a in gated):
        raise ConfigError(
            f"{path}: [registry] approval_gated_aliases must be a list of alias names",
            hint='e.g. approval_gated_aliases = ["champion", "prod"] (or [] for none)',
        )
    return tuple(gated)


def _four_eyes(registry, path: Path) -> bool:
    value = registry.get("four_eyes", False) if isinstance(registry, dict) else False
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: [registry] four_eyes must be true or false, not {value!r}",
                          hint="four_eyes = true: who registered a version may not approve it")  # fmt: skip
    return value


def _job_runner(jobs, path: Path) -> str:
    runner = os.environ.get(ENV_JOB_RUNNER) or (jobs.get("runner") if isinstance(jobs, dict) else None)
    if runner is not None and not isinstance(runner, str):
        raise ConfigError(f"{path}: [jobs] runner must be a string", hint='e.g. runner = "process"')
    return runner or "warm"


def _job_executor(jobs, path: Path) -> str:
    name = os.environ.get(ENV_JOB_EXECUTOR) or (jobs.get("executor") if isinstance(jobs, dict) else None)
    if name is not None and name not in JOB_EXECUTORS:
        where = f"${ENV_JOB_EXECUTOR}" if os.environ.get(ENV_JOB_EXECUTOR) else f"{path}: [jobs] executor"
        raise ConfigError(f"{where} = {name!r} is not one of {', '.join(JOB_EXECUTORS)}",
                          hint='e.g. executor = "ray"')
    return name or "local"


def _events_url(events: dict, path: Path) -> str:
    url = os.environ.get(ENV_EVENTS_URL) or events.get("url") or ""
    if url and url.split("://", 1)[0] not in EVENTS_URL_SCHEMES:
        where = f"${ENV_EVENTS_URL}" if os.environ.get(ENV_EVENTS_URL) else f"{path}: [events] url"
        raise ConfigError(
            f"{where} = {url!r} is neither empty (the metadata store) nor a redis:// URL",
            hint='leave it out, or e.g. url = "redis://127.0.0.1:6379/0"',
        )
    return url


def _features_online_url(features, path: Path) -> str:
    url = features.get("online_store", "") if isinstance(features, dict) else None
    if not isinstance(url, str) or (url and url.split("://", 1)[0] not in ("redis", "rediss",
                                                                            "unix", "sqlite")):
        raise ConfigError(f"{path}: [features] online_store = {url!r} is neither empty (SQLite in "
                          "the workspace) nor a redis:// or sqlite:/// URL",
                          hint='e.g. online_store = "redis://127.0.0.1:6379/0"')
    return url


def _resolve_store_url(url: str, root: Path) -> str:
    """Make a relative SQLite path absolute, relative to the workspace root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((root / url[len(prefix) :]).resolve())
    if "://" not in url:
        raise ConfigError(
            f"store url {url!r} is not a URL",
            hint="use sqlite:///path/to/metadata.db or postgresql://user:pass@host/db",
        )
    return url


def _resolve_location(url: str, root: Path) -> str:
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme != "file" and not rest.strip("/"):
            raise ConfigError(
                f"artifacts url {url!r} names no bucket or host",
                hint=f"use {scheme}://bucket/prefix (set in {CONFIG_FILE} or {ENV_ARTIFACTS_URL})",
            )
        return url
    return str((root / url).resolve())


def find_root(start: str | os.PathLike | None = None) -> Path:
    """Find the workspace root: an explicit folder, else $MODELLOOP_HOME, else walk up like git."""
    if start is not None:
        root = Path(start).expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise NotFound(
                f"{root} is not a modelloop workspace (no {CONFIG_FILE})",
                hint=f"run 'modelloop init {start}'",
            )
        return root
    home = os.environ.get(ENV_HOME)
    if home:
        return find_root(home)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise NotFound(
        f"no modelloop workspace in {here} or any parent folder",
        hint="run 'modelloop init', set MODELLOOP_HOME, or pass --workspace",
    )


def write_default(
    root: Path, *, store_url: str | None = None, artifacts_url: str | None = None
) -> Path:
    """Write a fresh ``modelloop.toml`` (refusing to overwrite one)."""
    path = root / CONFIG_FILE
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(13, "Permission denied", str(root))
    except OSError as exc:
        raise ConfigError(
            f"cannot create a workspace in {root}: {exc.strerror or exc}",
            hint="choose a folder you can write to",
        ) from None
    text = DEFAULT_CONFIG
    if store_url:
        text = text.replace(
            'url = "sqlite:///.modelloop/metadata.db"', f"url = {_toml_str(store_url)}"
        )
    if artifacts_url:
        text = text.replace('url = ".modelloop/artifacts"', f"url = {_toml_str(artifacts_url)}")
    try:
        with open(path, "x") as fh:
            fh.write(text)
    except FileExistsError:
        raise ConfigError(
            f"{root} is already a modelloop workspace", hint=f"use it as it is, or remove {path}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot create a workspace in {root}: {exc.strerror or exc}") from None
    return path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: Who a server is acting for in this request or thread (:func:`acting_as`); None: the OS user.
_ACTING_AS: contextvars.ContextVar[str | None] = contextvars.ContextVar("modelloop_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: str):
    """Within the block (this thread or task only), :func:`current_actor` is ``actor``: the API
    server runs each call as its token's name, so every history record (registered by, approved
    by, alias moved by) names the caller, not the server's OS user."""
    reset = _ACTING_AS.set(actor)
    try:
        yield
    finally:
        _ACTING_AS.reset(reset)


def acting_for() -> str | None:
    """The caller a server acts for in this call (:func:`acting_as`), or None."""
    return _ACTING_AS.get()


def current_actor() -> str:
    """Who is acting, for history records: the caller a server acts for (:func:`acting_as`),
    else $MODELLOOP_USER, else user@host (uid@host where there is no login name, as in some
    containers)."""
    import getpass
    import socket

    acting = _ACTING_AS.get()
    if acting:
        return acting
    user = os.environ.get("MODELLOOP_USER")
    if user:
        return user
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:
        return f"uid{os.getuid()}@{socket.gethostname()}"


#: Where ``modelloop login`` keeps the server and token the CLI uses when $MODELLOOP_TOKEN is unset.
ENV_CREDENTIALS = "MODELLOOP_CREDENTIALS"


def credentials_path(environ=None) -> Path:
    """``$MODELLOOP_CREDENTIALS``, else ``$XDG_CONFIG_HOME/modelloop/credentials`` (default
    ``~/.config``), read from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CREDENTIALS):
        return Path(env[ENV_CREDENTIALS]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "modelloop" / "credentials"


def save_credentials(url: str, token: str) -> Path:
    """Keep ``url`` and ``token`` for the CLI, readable by this user only (0600, written under a
    temporary name and renamed, so a reader never sees half a file or a wider mode)."""
    import json
    import tempfile

    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"url": url, "token": token}, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load_credentials(environ=None) -> dict | None:
    """``{"url", "token"}`` saved by ``modelloop login``, or None. A file others can read is
    refused: the token in it would be everyone's."""
    import json
    import stat

    path = credentials_path(environ)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} can be read by other users",
                          hint=f"chmod 600 {path}, or run 'modelloop login' again")  # fmt: skip
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("url"), str)
            and isinstance(data.get("token"), str)):  # fmt: skip
        raise ConfigError(f"{path} is not a credentials file modelloop wrote",
                          hint="run 'modelloop login URL' again")  # fmt: skip
    return {"url": data["url"], "token": data["token"]}
