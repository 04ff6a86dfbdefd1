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
    # helper C: settlements, payee statements, the ledger API, `flask settle`
    from registry.clearing import api_settlements, cli_settlements
    from registry.core.api import register

    register(app, api_settlements.blp)
    for command in cli_settlements.COMMANDS:
        app.cli.add_command(command)
    # helper B: payments, bank statements, the suspense list, `clearing overdue` and
    # `clearing send-mail`
    import click
    from flask.cli import AppGroup

    from registry.clearing import api_payments, cli_payments
    from registry.core.api import register as register_blueprint

    register_blueprint(app, api_payments.blp)
    group = app.cli.commands.get("clearing")
    if not isinstance(group, click.Group):
        group = AppGroup("clearing", help="Clearing-house chores: overdue statements, mail.")
        app.cli.add_command(group)
    for command in cli_payments.COMMANDS:
        group.add_command(command)
    # statements, reports and schedules; upfront statements issued in the take-up's transaction
    from registry.clearing import api_statements, cli_statements, statements
    from registry.licences.signals import licence_taken_up

    register_blueprint(app, api_statements.blp)
    for command in cli_statements.COMMANDS:
        group.add_command(command)
    licence_taken_up.connect(statements.on_licence_taken_up, weak=False)
