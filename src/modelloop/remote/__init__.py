"""modelloop over HTTP: the operations table (``operations.py``) the control-plane API and its
client are both generated from, and the client (a workspace whose services call a server)."""
