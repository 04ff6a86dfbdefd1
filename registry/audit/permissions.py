"""Who reads the audit log: the operator and auditors (the log spans every organisation)."""

from __future__ import annotations

from registry.core.actor import Role

AUDIT_READERS = (Role.ADMIN, Role.AUDITOR)
# Signing a checkpoint commits the operator to the log: the clearing house alone does it.
CHECKPOINT_ISSUERS = (Role.ADMIN,)
