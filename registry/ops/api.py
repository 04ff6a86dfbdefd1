"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database reachable and
migrated to the head revision). Public, and cheap enough for a load balancer to poll."""

from __future__ import annotations

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
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response
