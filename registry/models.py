"""Import every feature's models so the metadata is complete (Alembic, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import registry.accounts.models
    import registry.audit.models
    import registry.clearing.models
    import registry.contracts.models
    import registry.core.idempotency
    import registry.core.sequences
    import registry.licences.models
    import registry.offers.models
    import registry.patents.models
    import registry.web.models  # noqa: F401
