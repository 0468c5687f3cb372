"""fsspec filesystems for remote URLs (``s3://`` and whatever fsspec knows), configured alike for
the artifact store and for tabular input: the S3 endpoint comes from the options or from
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import os

from modelloop.errors import ConfigError


def remote_filesystem(url: str, options: dict | None = None, *, what: str = "artifact store"):
    """An fsspec filesystem for ``url``, with a clear error when its extra is missing."""
    import fsspec

    protocol = url.split("://", 1)[0]
    opts = dict(options or {})
    if protocol == "s3":
        try:
            import s3fs  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{what} is on S3 but s3fs is not installed",
                hint="pip install 'modelloop[s3]'",
            ) from None
        endpoint = (
            opts.pop("endpoint_url", None)
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        if endpoint:
            opts.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
    try:
        return fsspec.filesystem(protocol, **opts)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"cannot use {what} {url}: {exc}") from None
