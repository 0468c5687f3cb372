"""Small helpers every layer may use (ground floor): hashing, JSON conversion, callable loading.

One copy of each, so their semantics (chunk size, NaN handling, module naming) cannot drift apart.
"""
