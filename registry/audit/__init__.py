"""Audit: the append-only, hash-chained log of every state change. Imports no feature.

Nothing here imports Flask at module level: the offline verifier (``python -m
registry.audit.verify``) runs this package with only the standard library and ``cryptography``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    from registry.audit import api, cli
    from registry.audit.checkpoints import EXTENSION, CheckpointSigner
    from registry.config import Settings
    from registry.core.api import register

    settings: Settings = app.config["REGISTRY_SETTINGS"]
    app.extensions[EXTENSION] = CheckpointSigner(
        origin=settings.checkpoint_origin,
        instance_path=settings.instance_path,
        key_path=settings.checkpoint_key,
    )
    register(app, api.blp)
    cli.init_app(app)
