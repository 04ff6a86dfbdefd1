"""Exports: the registers as CSV for whoever may read them (``GET /exports/<register>.csv``),
and the operator's bundle of everything an auditor verifies offline (``flask export DIR``).

The last feature: it reads every other one through that feature's own visibility rules.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from registry.core.api import register
    from registry.exports import api, cli

    register(app, api.blp)
    app.cli.add_command(cli.export_command)
