"""The clearing house: what each licence owes, when, and how it reaches every payee.

DESIGN.md §2 (Clearing): a licence's schedule of amounts due (``schedule``), the royalty a
report costs (``royalties``), then statements, payments, the double-entry ledger and settlement
to co-owners and inventors (issue 5). The arithmetic modules are pure: terms snapshots and
integer fen in, integer fen out, no database and no request.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the clearing endpoints and commands (each part adds its block below)."""
