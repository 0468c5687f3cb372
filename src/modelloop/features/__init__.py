"""Feature sets: windowed aggregates by entity, computed once for training and serving."""
