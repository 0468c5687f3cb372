"""The control-plane HTTP API (``/api/v1``): a face over the façade like the CLI, generated from
the operations table (``modelloop.remote.operations``)."""
