"""Tabular files in and out, for ingest and batch transform alike (ground floor).

- :mod:`~modelloop.tabular.formats`: which format a file is in (CSV, TSV, Parquet, JSON Lines,
  JSON; ``.gz`` after a text format).
- :mod:`~modelloop.tabular.locations`: files, folders, globs and ``s3://`` prefixes expanded to
  input files, and opened (local or through fsspec, decompressed when gzipped).
- :mod:`~modelloop.tabular.chunks`: cutting text at line ends (blocks to parse, byte ranges to
  plan), Parquet into runs of row groups, and the column names in a file's head.

Like pyarrow's own CSV defaults, quoted values may not hold line breaks: a cut at a line end is a
cut between rows.
"""
