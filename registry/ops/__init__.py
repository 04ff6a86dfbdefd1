"""Operations: health and readiness probes, and the ``db`` migration commands."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from registry.ops import api, cli

    app.register_blueprint(api.probes)
    cli.init_app(app)
