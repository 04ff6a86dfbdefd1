"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database reachable and
migrated to the head revision, the contract font installed, the signing key loadable and the
blob store writable). Public, and cheap enough for a load balancer to poll."""

from __future__ import annotations

import os

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from registry.core.http import get_db
from registry.ops.migrations import current_revision, head_revision

probes = Blueprint("probes", __name__)


@probes.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


def contract_checks() -> dict[str, str]:
    """A take-up issues a contract: without the CJK font, the signing key or a writable blob
    store it would fail, so the instance is not ready (DESIGN.md §6: fail loudly)."""
    # Imported here: ops comes first among the features and must not depend on contracts at
    # import time.
    from registry.contracts.issuing import office
    from registry.contracts.rendering import TEMPLATE_KEY, TEMPLATE_VERSION
    from registry.contracts.signing import SigningConfigError
    from registry.core.pdf import RenderError, TemplateInfo, require_cjk_font

    checks: dict[str, str] = {}
    try:
        require_cjk_font(TemplateInfo.load(TEMPLATE_KEY, TEMPLATE_VERSION).font_family)
        checks["contract_font"] = "ok"
    except RenderError as exc:
        checks["contract_font"] = str(exc)
    contracts = office()
    try:
        contracts.identity  # noqa: B018 - loads (or generates) the key; that is the check
        checks["signing_key"] = "ok"
    except SigningConfigError as exc:
        checks["signing_key"] = str(exc)
    root = contracts.store.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        writable = os.access(root, os.W_OK)
    except OSError:
        writable = False
    checks["blob_store"] = "ok" if writable else f"{root} is not writable"
    return checks


@probes.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks: dict[str, str] = {}
    db = get_db()
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        settings = current_app.config["REGISTRY_SETTINGS"]
        current, head = current_revision(db.engine), head_revision(settings.database_url)
        checks["migrations"] = (
            "ok" if current == head else f"at {current or 'nothing'}, head is {head}"
        )
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks.update(contract_checks())
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response
