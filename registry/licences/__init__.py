"""Licences: take-ups of published open-licence offers and the licences they create."""

from __future__ import annotations

from flask import Flask

from registry.core.api import register


def init_app(app: Flask) -> None:
    from registry.licences import api, cli

    register(app, api.blp)
    cli.init_app(app)
