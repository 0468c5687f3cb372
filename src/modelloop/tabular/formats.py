"""File formats by name: the suffix decides, unless the caller names the format."""

from __future__ import annotations

from modelloop.errors import InvalidInput

#: File suffix -> format. ``.gz`` may follow the text formats.
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
FORMATS = ("csv", "tsv", "parquet", "jsonl", "json")
#: Formats whose rows are lines, so a file can be cut at any line end.
LINE_FORMATS = ("csv", "tsv", "jsonl")
DELIMITERS = {"csv": ",", "tsv": "\t"}


def check_format(fmt: str, formats: tuple[str, ...] = FORMATS) -> str:
    if fmt not in formats:
        raise InvalidInput(f"unknown format '{fmt}'", hint=f"use one of: {', '.join(formats)}")
    return fmt


def is_gzip(path: str) -> bool:
    return path.lower().endswith(".gz")


def format_of(path: str, override: str | None = None,
              formats: tuple[str, ...] = FORMATS) -> str | None:
    """The format of ``path`` (``override`` if given); None when the suffix says nothing known.

    A gzipped Parquet file is not a format (Parquet compresses inside the file).
    """
    if override:
        return check_format(override, formats)
    name = str(path).rsplit("/", 1)[-1].lower()
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        return None
    if suffix == "gz":
        stem, dot, suffix = stem.rpartition(".")
        fmt = SUFFIXES.get("." + suffix) if dot else None
        fmt = None if fmt == "parquet" else fmt
    else:
        fmt = SUFFIXES.get("." + suffix)
    return fmt if fmt in formats else None
