"""Real-time serving: endpoints, variants, routing, rollouts, data capture and protocol adapters.

One protocol-agnostic data plane (resolve the variant, validate against the signature, predict,
capture) with thin adapters for the SageMaker runtime, MLflow scoring JSON and the Open Inference
Protocol v2.
"""
