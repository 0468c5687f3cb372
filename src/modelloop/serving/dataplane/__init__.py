"""The protocol-agnostic data plane: route → validate once on arrays → predict → capture → count.

A server process holds one :class:`~modelloop.serving.dataplane.plane.DataPlane`. Its pieces:

- ``payload``: what goes in (:class:`Payload`, decoded by a protocol) and out (:class:`Result`),
  and the errors the plane answers with;
- ``refresh``: an :class:`EndpointRuntime` per endpoint, built from the endpoint's spec and
  swapped in as a whole when the stored revision changes; requests already running keep the
  runtime (and models) they started with, so a swap fails no request. Loaded models are shared
  across runtimes by package hash, so changing a weight reloads nothing;
- ``routing``: which variant answers (weights, target variant, sticky routing keys);
- ``variant`` and ``validation``: a loaded variant checks each request once, on the whole array:
  when every signature column is numeric the rows become one float64 array (one conversion, one
  shape check, one integrality check), and scikit-learn models that accept it get that array
  directly — none of the per-column pandas casting that dominates MLflow's scoring time. Other
  signatures take the signature's DataFrame path;
- ``batching``: a fast model (under half a millisecond per call) is called inline on the event
  loop; a slower one runs on the variant's own thread, and requests that arrive meanwhile are
  gathered into the next call (adaptive micro-batching);
- ``stats``: per-variant counters and latencies, written to the store and as metric series.
"""
