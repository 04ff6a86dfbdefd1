"""Audit: the append-only, hash-chained log of every state change. Imports no feature."""

from __future__ import annotations

from flask import Flask

from registry.core.api import register


def init_app(app: Flask) -> None:
    from registry.audit import api, cli

    register(app, api.blp)
    cli.init_app(app)
