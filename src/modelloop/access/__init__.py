"""Who may do what, and the record of what was done: API tokens with roles, and the audit log.

Low in the house (above the store, below the data) because serving checks tokens as the control
plane does; the faces (``api/auth.py``, the CLI) are thin over it.
"""

from modelloop.access.audit import Audit, record, redact
from modelloop.access.tokens import ROLES, Principal, Tokens, local_principal, require

__all__ = ["ROLES", "Audit", "Principal", "Tokens", "local_principal", "record", "redact", "require"]
