"""Where tabular input is: local files, folders and globs, or ``s3://`` (any fsspec URL) objects.

A folder or prefix holds the files in it whose format is known (names starting with ``.`` or
``_`` are skipped: Spark's ``_SUCCESS``, editors' dot files); a glob holds what it matches; files
come in name order, so expanding the same location twice gives the same list.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelloop.common.remote import remote_filesystem
from modelloop.errors import InvalidInput, NotFound
from modelloop.tabular.formats import FORMATS, SUFFIXES, format_of, is_gzip


@dataclass(frozen=True)
class InputFile:
    """One input file as found (size and version pin it: a changed file is noticed)."""

    path: str  # absolute local path, or a URL
    format: str
    size: int
    version: str  # mtime in ns for a local file, ETag for an object
    shown: str = ""  # as the user's location named it (messages, records); path when empty

    @property
    def name(self) -> str:
        return self.shown or self.path

    @property
    def remote(self) -> bool:
        return is_remote(self.path)

    @property
    def gzip(self) -> bool:
        return is_gzip(self.path)

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "size": self.size, "version": self.version}


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def filesystem(location: str, options: dict | None = None):
    """The fsspec filesystem of a remote location (endpoint from the options or environment)."""
    return remote_filesystem(location, dict(options or {}), what=f"input {location}")


def find_files(locations: str | Iterable[str], fmt: str | None = None, *,
               formats: tuple[str, ...] = FORMATS, options: dict | None = None) -> list[InputFile]:
    """Expand files, folders, globs and remote prefixes to input files, in order."""
    if isinstance(locations, str | os.PathLike):
        locations = [locations]
    out: list[InputFile] = []
    for location in locations:
        location = str(location)
        if is_remote(location):
            out.extend(_find_remote(location, fmt, formats, options))
        else:
            out.extend(_find_local(location.removeprefix("file://"), fmt, formats))
    return out


def _known_format(path: str, fmt: str | None, formats: tuple[str, ...]) -> str:
    kind = format_of(path, fmt, formats)
    if kind is None:
        raise InvalidInput(
            f"unknown format of '{path}'",
            hint=f"name files {', '.join(s for s in SUFFIXES if SUFFIXES[s] in formats)}"
            " (and .gz of the text ones), or name the format",
        )
    return kind


def _none_in_folder(where: str, formats: tuple[str, ...]) -> NotFound:
    return NotFound(
        f"no CSV, Parquet or JSON Lines files in folder '{where}'",
        hint="give files ending in " + ", ".join(s for s in SUFFIXES if SUFFIXES[s] in formats),
    )


def _find_local(given: str, fmt: str | None, formats: tuple[str, ...]) -> list[InputFile]:
    if glob.has_magic(given):
        found = [p for p in sorted(glob.glob(given, recursive=True)) if os.path.isfile(p)]
        if not found:
            raise NotFound(f"no files match '{given}'", hint="check the pattern")
    elif os.path.isdir(given):
        found = sorted(
            str(p)
            for p in Path(given).rglob("*")
            if p.is_file() and not p.name.startswith((".", "_")) and format_of(str(p), fmt, formats)
        )
        if not found:
            raise _none_in_folder(given, formats)
    elif os.path.exists(given):
        found = [given]
    else:
        raise NotFound(f"no such input file: '{given}'", hint="check the path")
    out = []
    for p in found:
        kind = _known_format(p, fmt, formats)
        try:
            st = os.stat(p)
        except OSError as e:
            raise InvalidInput(f"cannot read '{p}': {e.strerror or e}", hint="check the file") from e
        out.append(InputFile(str(Path(p).resolve()), kind, st.st_size, str(st.st_mtime_ns),
                             str(Path(p))))
    return out


def _find_remote(location: str, fmt: str | None, formats: tuple[str, ...],
                 options: dict | None) -> list[InputFile]:
    fs = filesystem(location, options)
    protocol, bare = location.split("://", 1)
    try:
        if glob.has_magic(bare):
            paths = sorted(fs.glob(bare))
        elif fs.isdir(bare):
            paths = sorted(
                p for p in fs.find(bare) if not p.rsplit("/", 1)[-1].startswith((".", "_"))
            )
            paths = [p for p in paths if format_of(p, fmt, formats)]
            if not paths:
                raise _none_in_folder(location, formats)
        else:
            paths = [bare] if fs.exists(bare) else []
        infos = [fs.info(p) for p in paths]
    except (OSError, PermissionError) as exc:
        raise NotFound(f"cannot read '{location}': {exc}",
                       hint="check the URL and credentials") from None
    if not paths:
        raise NotFound(f"no input files at '{location}'", hint="check the URL")
    out = []
    for p, info in zip(paths, infos, strict=True):
        version = str(info.get("ETag") or info.get("etag") or info.get("LastModified") or "")
        url = f"{protocol}://{p}"
        out.append(InputFile(url, _known_format(url, fmt, formats), int(info["size"]), version, url))
    return out


def open_input(path: str, options: dict | None = None):
    """A seekable binary file object of a local path or a remote URL (the raw bytes)."""
    if is_remote(path):
        return filesystem(path, options).open(path.split("://", 1)[1], "rb")
    return open(path.removeprefix("file://"), "rb")


def open_stream(path: str, options: dict | None = None):
    """A pyarrow input stream of the file's content (decompressed when it is gzipped)."""
    import pyarrow as pa

    raw = open_raw(path, options)
    return pa.CompressedInputStream(raw, "gzip") if is_gzip(path) else raw


def open_raw(path: str, options: dict | None = None):
    """A pyarrow random-access file of the raw bytes (zero-copy reads of a local file)."""
    import pyarrow as pa

    if is_remote(path):
        return pa.PythonFile(open_input(path, options), mode="r")
    return pa.OSFile(path.removeprefix("file://"))
