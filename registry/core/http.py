"""The HTTP edge shared by every feature: error envelope, request session, headers, ETags.

Every 4xx and 5xx — raised by a service, by marshmallow, by flask-smorest or by Flask itself
(404, 405, 413) — answers with the one envelope of DESIGN.md §3::

    {"code": "validation_error", "status": 422, "message": "...",
     "errors": [{"field": "owners.0.title_share", "messages": ["..."]}]}
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request, send_file
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    MethodNotAllowed,
)
from werkzeug.middleware.proxy_fix import ProxyFix

from registry.core import redaction
from registry.core.db import Database
from registry.core.errors import (
    FieldError,
    PreconditionFailed,
    PreconditionRequired,
    RegistryError,
    ValidationFailed,
)

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Machine-readable codes for errors Flask and werkzeug raise themselves.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
# webargs nests errors under the request location; clients name fields, not locations.
LOCATIONS = frozenset({"json", "query", "form", "files", "headers", "querystring", "view_args"})
# On every response, errors and static files included (ASVS 5.0 3.4.3-3.4.6): scripts only from
# this origin, never inline ('unsafe-inline' is allowed for styles only: Swagger UI sets them);
# no framing; no MIME sniffing; no referrer to other sites; no powerful browser features.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers predating CSP frame-ancestors
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# Text no column can hold: NUL (PostgreSQL refuses it) and unpaired surrogates (JSON's "\ud800"
# escape makes them; they cannot be encoded as UTF-8). Refused at the edge with the field named,
# so they answer 422 rather than failing in the driver with a 500.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def flatten_messages(messages: Any, prefix: str = "") -> list[FieldError]:
    """Turn marshmallow's nested ``{"json": {"owners": {0: {...}}}}`` into flat field paths."""
    if isinstance(messages, Mapping):
        out: list[FieldError] = []
        for key, value in messages.items():
            name = str(key)
            if not prefix and name in LOCATIONS:
                out.extend(flatten_messages(value, ""))
                continue
            path = f"{prefix}.{name}" if prefix else name
            out.extend(flatten_messages(value, path))
        return out
    if isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        return [FieldError(prefix or "_schema", tuple(messages))]
    if isinstance(messages, list | tuple):
        out = []
        for item in messages:
            out.extend(flatten_messages(item, prefix))
        return out
    return [FieldError(prefix or "_schema", (str(messages),))]


def envelope(
    status: int, code: str, message: str, errors: list[FieldError] | None = None
) -> Response:
    body = {
        "code": code,
        "status": status,
        "message": message,
        "errors": [{"field": e.field, "messages": list(e.messages)} for e in errors or []],
    }
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        # RFC 9110 §15.5.2: a 401 names the scheme the client should use (RFC 6750 §3).
        response.headers["WWW-Authenticate"] = 'Bearer realm="registry"'
    return response


def handle_registry_error(error: RegistryError) -> Response:
    return envelope(error.status, error.code, error.message, error.errors)


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = flatten_messages(data.get("messages") or data.get("errors") or {})
    if status == 422 and errors:
        message = "invalid input"
    else:
        message = data.get("message") or error.description or error.name
    response = envelope(status, HTTP_CODES.get(status, "error"), message, errors)
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_operational_error(error: OperationalError) -> Response:
    # A write that waited past the busy timeout (SQLite) or lost a serialisation race
    # (PostgreSQL): nothing was committed, and the client may retry (reliability.md §2.4).
    # SQLite reports broken SQL ("no such table") as an OperationalError too: that is a bug,
    # not a busy database, and answers 500 like any other.
    if isinstance(error.orig, sqlite3.OperationalError) and not any(
        word in str(error.orig).lower() for word in ("locked", "busy")
    ):
        return handle_unexpected(error)
    log.warning("database busy: %s", error)
    response = envelope(503, "unavailable", "the database is busy; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


def handle_unexpected(error: Exception) -> Response:
    """500 with nothing of the failure in it (ASVS 5.0 16.5.1): no traceback, SQL, path or
    exception text, only an id the operator finds next to the details in the log."""
    error_id = secrets.token_hex(8)
    log.exception("unhandled error %s on %s %s", error_id, request.method, request.path)
    response = envelope(
        500,
        "internal_error",
        f"the server failed to answer (an internal error); quote error id {error_id} "
        "when reporting it",
    )
    response.headers["X-Error-Id"] = error_id
    return response


def unstorable_fields(value: Any, path: str = "") -> list[str]:
    """Field paths (``owners.0.name``) of strings in ``value`` no database can store."""
    if isinstance(value, str):
        return [path or "_schema"] if UNSTORABLE_TEXT.search(value) else []
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if UNSTORABLE_TEXT.search(str(key)):
                out.append(path or "_schema")
            else:
                out.extend(unstorable_fields(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(unstorable_fields(item, f"{path}.{index}" if path else str(index)))
    return out


def _refuse_unstorable_text() -> None:
    if request.routing_exception is not None:
        return  # 404 and 405 answer as such
    fields: list[str] = []
    for key, value in request.args.items(multi=True):
        fields += unstorable_fields({key: value})
    if request.is_json:
        try:
            fields += unstorable_fields(request.get_json(silent=True))
        except RecursionError:
            # "[[[[…" a few thousand deep exhausts the parser's stack: bad input, not a 500.
            raise BadRequest("the JSON body is nested too deeply") from None
    if fields:
        message = "text may not contain NUL characters or unpaired surrogates"
        raise ValidationFailed(
            "invalid input", [FieldError.of(field, message) for field in dict.fromkeys(fields)]
        )


def download(data: bytes, *, mimetype: str, filename: str, inline: bool = False) -> Response:
    """A generated file as the answer: a server-made name (RFC 6266-encoded by werkzeug, never
    a user-supplied path), and never cached, since every such file is someone's own record."""
    response = send_file(
        io.BytesIO(data),
        mimetype=mimetype,
        as_attachment=not inline,
        download_name=filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def get_db() -> Database:
    db: Database = current_app.extensions["registry.db"]
    return db


def get_session() -> Session:
    """The request's session: write requests get a ``BEGIN IMMEDIATE`` one on SQLite, and so
    do reads whose handler is marked :func:`writes` (a download that records an audit event)."""
    if "db_session" not in g:
        declared = getattr(current_handler(), WRITES, None)
        write = request.method in WRITE_METHODS if declared is None else declared
        g.db_session = get_db().session(write=write)
    session: Session = g.db_session
    return session


WRITES = "_registry_writes"


def writes(handler: Any) -> Any:
    """Mark a GET handler that writes (an audit event): its transaction takes the write lock
    up front on SQLite instead of upgrading a read snapshot, which could fail under load."""
    setattr(handler, WRITES, True)
    return handler


def reads(handler: Any) -> Any:
    """Mark a POST handler that only reads (a verification): it must not hold SQLite's one
    write lock while it works, least of all for an anonymous caller."""
    setattr(handler, WRITES, False)
    return handler


def current_handler() -> Any:
    """The function that will answer this request (a MethodView's method, or the view)."""
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    return getattr(view_class, request.method.lower(), None) if view_class else view


def _commit_or_rollback(response: Response) -> Response:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return response
    try:
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
    except OperationalError as exc:
        # The answer was built but its changes could not be committed (a busy SQLite file, a
        # serialisation failure): nothing happened, so say so and let the client retry.
        session.rollback()
        return _security_headers(handle_operational_error(exc))
    finally:
        session.close()
    return response


def _discard_session(_error: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        # Served over TLS (production insists on it): browsers must never fall back to HTTP.
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    return response


def etag_for(*parts: object) -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


# The edits that call check_if_match declare the header (``@blp.doc(parameters=[IF_MATCH_DOC])``)
# so the API description says what the server enforces: required, 428 without it.
IF_MATCH_DOC = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string", "minLength": 1},  # an empty one is no precondition: 428
    "description": "the ETag of your last GET (428 without it, 412 when it is stale)",
}


def check_if_match(current_etag: str) -> None:
    """Optimistic concurrency for edits: 428 without ``If-Match``, 412 when it is stale."""
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired("send If-Match with the ETag from your last GET")
    offered = {tag.strip() for tag in header.split(",")}
    if "*" not in offered and current_etag not in offered:
        raise PreconditionFailed("the resource changed since you read it; GET it again")


def init_app(app: Flask) -> None:
    redaction.install()  # no password or token reaches a log (registry.core.redaction)
    proxies = app.config["REGISTRY_SETTINGS"].trusted_proxies
    if proxies:
        # Behind that many reverse proxies, the address they saw the client at is the client's
        # address (rate limits, logs); without any, X-Forwarded-* is the client's own claim and
        # ignored (ASVS 5.0 4.1.3).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.register_error_handler(RegistryError, handle_registry_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(OperationalError, handle_operational_error)
    app.register_error_handler(Exception, handle_unexpected)
    app.before_request(_refuse_unstorable_text)
    app.after_request(_commit_or_rollback)
    app.after_request(_security_headers)
    app.teardown_request(_discard_session)
