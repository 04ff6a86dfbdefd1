"""flask-smorest wiring shared by the features: the Api object, base schema, paging, docs.

Lists use flask-smorest's own paging (``page``/``page_size`` query arguments, a JSON array
body and an ``X-Pagination`` header with ``total``), the same on every list endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import marshmallow as ma
import swagger_ui_bundle
from flask import Blueprint, Flask, render_template_string, send_from_directory
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from flask_smorest import Blueprint as ApiBlueprint
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
API_PREFIX = "/api/v1"
STATIC = Path(__file__).parent / "static" / "apidocs"

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Open Licence Registry API</title>
<link rel="stylesheet" href="{{ url_for('apidocs.vendor', filename='swagger-ui.css') }}">
</head><body><div id="swagger-ui" data-spec="{{ url_for('api-docs.openapi_json') }}"></div>
<script src="{{ url_for('apidocs.vendor', filename='swagger-ui-bundle.js') }}"></script>
<script src="{{ url_for('apidocs.own', filename='init.js') }}"></script>
</body></html>"""


class Schema(ma.Schema):
    """Base for request bodies: unknown fields are an error, strings arrive stripped."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _strip_strings(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return data


class QuerySchema(ma.Schema):
    """Base for query strings: paging arguments are read separately, so others pass through."""

    class Meta:
        unknown = ma.EXCLUDE


def make_blueprint(name: str, import_name: str, description: str) -> ApiBlueprint:
    return ApiBlueprint(name, import_name, url_prefix=API_PREFIX, description=description)


def register(app: Flask, blueprint: ApiBlueprint) -> None:
    api: Api = app.extensions["registry.api"]
    api.register_blueprint(blueprint)


def paginate(session: Session, statement: Select[T], params: PaginationParameters) -> list[T]:
    """One page of ``statement`` and its total, recorded for the ``X-Pagination`` header."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    params.item_count = total or 0
    page = statement.limit(params.page_size).offset(params.first_item)
    return list(session.scalars(page))


def _docs_page() -> ResponseReturnValue:
    return render_template_string(DOCS_PAGE)


def init_app(app: Flask) -> Api:
    api = Api(app, spec_kwargs={"servers": [{"url": "/"}]})
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "token from POST /tokens"}
    )
    app.extensions["registry.api"] = api
    vendor = Blueprint("apidocs", __name__)
    vendor.add_url_rule("/api/docs", "page", _docs_page)
    vendor.add_url_rule(
        "/api/docs/vendor/<path:filename>",
        "vendor",
        lambda filename: send_from_directory(swagger_ui_bundle.swagger_ui_path, filename),
    )
    vendor.add_url_rule(
        "/api/docs/own/<path:filename>",
        "own",
        lambda filename: send_from_directory(STATIC, filename),
    )
    app.register_blueprint(vendor)
    return api
