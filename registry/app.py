"""The application factory: settings, database, HTTP edge, then each feature in order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from flask import Flask

from registry import (
    accounts,
    audit,
    clearing,
    contracts,
    exports,
    licences,
    offers,
    ops,
    patents,
    web,
)
from registry.config import Settings, load_settings
from registry.core import api as core_api
from registry.core import http, ratelimit
from registry.core.db import Database, make_engine

# Explicit and ordered (STYLE.md §1): a feature may rely on those before it.
FEATURES: tuple[ModuleType, ...] = (
    ops,
    audit,
    accounts,
    patents,
    offers,
    licences,
    contracts,
    clearing,
    exports,
    web,
)


def create_app(
    overrides: dict[str, Any] | None = None,
    *,
    database: Database | None = None,
    configure: Callable[[Flask], None] | None = None,
) -> Flask:
    """Build the app. ``overrides`` replaces settings (tests); ``database`` injects a prepared
    :class:`Database` (tests bind it to a transaction that is rolled back afterwards)."""
    settings = load_settings(overrides=overrides)
    app = Flask("registry", instance_path=str(settings.instance_path))
    app.config.update(settings.flask_config())
    app.config["REGISTRY_SETTINGS"] = settings
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    app.extensions["registry.db"] = database or Database(make_engine(settings.database_url))
    http.init_app(app)
    core_api.init_app(app)
    ratelimit.init_app(app)
    for feature in FEATURES:
        feature.init_app(app)
    if configure:
        configure(app)
    return app


def settings_of(app: Flask) -> Settings:
    settings: Settings = app.config["REGISTRY_SETTINGS"]
    return settings
