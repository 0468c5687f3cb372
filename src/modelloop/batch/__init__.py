"""Batch transform: score files or dataset versions with a registered model, in bounded chunks,
in parallel, resumable after a crash."""
