"""flask-smorest wiring shared by the features: the Api object, base schema, paging, docs.

Lists use flask-smorest's own paging (``page``/``page_size`` query arguments, a JSON array
body and an ``X-Pagination`` header with ``total``), the same on every list endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import marshmallow as ma
import swagger_ui_bundle
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    render_template_string,
    request,
    send_from_directory,
)
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from flask_smorest import Blueprint as ApiBlueprint
from flask_smorest.pagination import PaginationMetadataSchema, PaginationParameters
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from registry.core.actor import require_actor
from registry.core.http import current_handler, handle_http_exception

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
PROTECTED_BLUEPRINTS = "registry.protected_blueprints"
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


class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(required=True, metadata={"example": "owners.0.title_share"})
    messages = ma.fields.List(ma.fields.String(), required=True)


class ErrorSchema(ma.Schema):
    """The one error envelope of every 4xx and 5xx (DESIGN.md §3, core/http.py ``envelope``), as
    the API description declares it: flask-smorest's own error schema (an integer ``code``, an
    ``errors`` object) would describe responses the registry never sends."""

    code = ma.fields.String(required=True, metadata={"example": "validation_error"})
    status = ma.fields.Integer(required=True, metadata={"example": 422})
    message = ma.fields.String(required=True)
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema), required=True)


class QuerySchema(ma.Schema):
    """Base for query strings: paging arguments are read separately, so others pass through."""

    class Meta:
        unknown = ma.EXCLUDE


class JsonBodyParser(FlaskParser):
    """webargs' parser, except that a body sent as anything but JSON to an endpoint reading JSON
    answers 415: webargs would ignore it and report every field as missing."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req) and req.get_data(cache=True):
            raise UnsupportedMediaType("send the request body as application/json")
        return super()._raw_load_json(req)


class RegistryBlueprint(ApiBlueprint):
    ARGUMENTS_PARSER = JsonBodyParser()


def make_blueprint(name: str, import_name: str, description: str) -> ApiBlueprint:
    return RegistryBlueprint(name, import_name, url_prefix=API_PREFIX, description=description)


def register(app: Flask, blueprint: ApiBlueprint) -> None:
    api: Api = app.extensions["registry.api"]
    api.register_blueprint(blueprint)
    app.extensions.setdefault(PROTECTED_BLUEPRINTS, set()).add(blueprint.name)


def public(handler: F) -> F:
    """Mark an API handler as open to anonymous callers; every other one needs a token.

    The API description says the same: its default security requirement is the bearer token
    (``init_app``); here a token is optional (``{}`` or bearer, OpenAPI 3.0 §4.8.30)."""
    handler._registry_public = True  # type: ignore[attr-defined]
    apidoc = getattr(handler, "_apidoc", {})  # flask-smorest's, as its Blueprint.doc writes it
    manual = {**apidoc.get("manual_doc", {}), "security": [{}, {"bearer": []}]}
    handler._apidoc = {**apidoc, "manual_doc": manual}  # type: ignore[attr-defined]
    return handler


def _authenticate_first() -> None:
    """Answer 401 to an anonymous caller before its input is even parsed, so an unauthenticated
    request never learns anything from validation messages (and sees one consistent answer)."""
    if request.blueprint not in current_app.extensions.get(PROTECTED_BLUEPRINTS, ()):
        return
    handler = current_handler()
    if handler is not None and not getattr(handler, "_registry_public", False):
        require_actor()


def paginate(session: Session, statement: Select[T], params: PaginationParameters) -> list[T]:
    """One page of ``statement`` and its total, recorded for the ``X-Pagination`` header."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    params.item_count = total or 0
    if params.first_item >= params.item_count:
        # Past the end: nothing to fetch, and an absurd page number (2**70) never reaches the
        # database as an OFFSET it cannot hold (that was a 500).
        return []
    page = statement.limit(params.page_size).offset(params.first_item)
    return list(session.scalars(page))


def _docs_page() -> ResponseReturnValue:
    return render_template_string(DOCS_PAGE)


class RegistryApi(Api):
    """flask-smorest's Api answering errors with the registry's envelope, not its own."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return handle_http_exception(error)

    def _register_pagination_header(self) -> None:
        # X-Pagination carries JSON (flask-smorest json.dumps it). OpenAPI 3.0 describes such a
        # header with ``content``; flask-smorest's ``schema`` would mean the "simple" style
        # (``total,3,page,1``), which no client could parse the real header with.
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata (JSON)",
                "content": {"application/json": {"schema": PaginationMetadataSchema}},
            },
            lazy=True,
        )


def init_app(app: Flask) -> Api:
    api = RegistryApi(app, spec_kwargs={"servers": [{"url": "/"}], "security": [{"bearer": []}]})
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
    app.before_request(_authenticate_first)
    return api
