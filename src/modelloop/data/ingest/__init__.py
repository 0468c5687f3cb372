"""Ingest: input files -> validated Parquet parts (:mod:`~modelloop.data.ingest.engine`), read by
format (``readers``), made to fit the dataset's schema (``conformance``), with rejected rows kept
(``quarantine``) and the parts written and read back (``writer``)."""
