"""The control-plane API's settings: ``[api]`` in ``modelloop.toml``, checked once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelloop.errors import ConfigError, InvalidInput
from modelloop.remote.operations import PAGE_MAX


class ApiSettings(BaseModel):
    """``[api]``: where the server listens and the limits that keep one client from hurting the
    others."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    #: "token": every route needs an API token (``modelloop token create``); "none": every caller
    #: is the local admin, allowed on a loopback address only.
    auth: Literal["token", "none"] = "token"
    tls_cert: str | None = None
    tls_key: str | None = None
    #: A JSON request body larger than this is refused (413).
    max_body_bytes: int = Field(1 << 20, ge=1024)
    #: An uploaded file (ingest) larger than this is refused (413).
    max_upload_bytes: int = Field(16 << 30, ge=1024)
    #: Requests per second each token may make on average, and the burst it may make at once.
    rate_limit: float = Field(50.0, gt=0)
    rate_burst: int = Field(100, ge=1)
    #: Threads for calls at once (a training or a deploy holds one until it ends).
    threads: int = Field(200, ge=1, le=10_000)
    #: The most items one page may hold (``limit``).
    page_max: int = Field(PAGE_MAX, ge=1, le=PAGE_MAX)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @classmethod
    def from_config(cls, config, **overrides) -> ApiSettings:
        """The workspace's ``[api]`` table, with ``overrides`` (command-line options) on top;
        TLS file paths are read relative to the workspace."""
        values = {**config.api, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            settings = cls.model_validate(values)
        except Exception as exc:  # pydantic's ValidationError: name the key
            errs = getattr(exc, "errors", lambda: [])()
            where = ".".join(str(p) for p in errs[0]["loc"]) if errs else "?"
            msg = errs[0]["msg"] if errs else str(exc)
            raise ConfigError(f"[api] {where}: {msg}",
                              hint=f"known keys: {', '.join(cls.model_fields)}") from None  # fmt: skip
        if bool(settings.tls_cert) != bool(settings.tls_key):
            raise ConfigError("[api] tls_cert and tls_key go together",
                              hint="give both the certificate and its private key (PEM files)")  # fmt: skip
        for key in ("tls_cert", "tls_key"):
            value = getattr(settings, key)
            if value:
                path = Path(value).expanduser()
                path = path if path.is_absolute() else Path(config.root) / path
                if not path.is_file():
                    raise ConfigError(f"[api] {key}: no file {path}")
                setattr(settings, key, str(path))
        return settings


def check_bind(settings: ApiSettings) -> None:
    """Refuse to listen beyond this machine when nobody is authenticated."""
    from modelloop.serving.spec import is_loopback

    if settings.auth == "none" and not is_loopback(settings.host):
        raise InvalidInput(
            f"refusing to serve the API on {settings.host} without authentication: anyone who "
            "reaches the port could change every model, endpoint and dataset",
            hint='set [api] auth = "token" in modelloop.toml (the default) and create tokens '
            "with 'modelloop token create --role viewer|operator|admin --name NAME', or serve "
            "on 127.0.0.1",
        )
