"""Stream-fed datasets: rows arriving from a stream are committed as dataset versions in
micro-batches, by size or time, each row exactly once, through the same ingest engine (schema
rules, quarantine) as files; each committed batch is checked as it lands.

- :mod:`~modelloop.streams.sources`: where rows come from: the dataset's append buffer (rows
  POSTed over HTTP or ``ws.datasets.append_rows``, durable in the store) and Redis Streams (a
  consumer group, XREADGROUP, XACK after the commit).
- :mod:`~modelloop.streams.consumer`: the micro-batcher: buffers entries, commits a version
  with the source's position in its transaction, then acknowledges.
- :mod:`~modelloop.streams.service`: ``ws.streams``: runs a consumer and checks each batch
  (metric series per batch, alarms; the dataset's after-ingest monitors run on it too).

Watched folders are the triggers' (``automation``): ``modelloop data stream NAME --from DIR``
creates one.
"""
