"""modelloop over HTTP: the operations table (``operations.py``) and how each operation's
parameters travel (``signatures.py``), which the control-plane API and its client are both
generated from, and the client (a workspace whose services call a server)."""
