"""Patents: the registry of patents, their ownership, inventors and encumbrances."""

from __future__ import annotations

from flask import Flask

from registry.core.api import register


def init_app(app: Flask) -> None:
    from registry.patents import api, cli

    register(app, api.blp)
    cli.init_app(app)
