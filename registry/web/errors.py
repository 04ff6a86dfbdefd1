"""Error pages: the API's error envelope, shown as a page, for every address outside the API.

Every error already becomes the one envelope (registry/core/http.py): a service's refusal,
Flask's 404 and 405, a 413, the rate limits' 429, a 500 with its error id. For a page address
this turns that envelope, as it is, into HTML: the same status, code, message, field errors
and ``Retry-After``/``Allow``/``X-Error-Id`` headers, with a sentence in the page's language
above it; never a stack trace. The API, the probes, and a client that asks for JSON by its
``Accept`` header keep the JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError

from registry.core.http import envelope
from registry.web import labels, sessions

log = logging.getLogger(__name__)

KEPT_HEADERS = ("Retry-After", "Allow", "X-Error-Id")


def wants_json() -> bool:
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def handle_csrf_error(error: CSRFError) -> Response:
    # The envelope's code names what failed; Flask-WTF's reason is the message.
    return envelope(400, "csrf_failed", error.description or "the CSRF token is missing")


def as_page(response: Response) -> Response:
    """An error envelope for a page address, rendered as the error page."""
    if (
        response.status_code < 400
        or response.mimetype != "application/json"
        or not sessions.is_page_path(request.path)
        or wants_json()
    ):
        return response
    body: Any = response.get_json(silent=True)
    if not isinstance(body, dict) or "code" not in body:
        return response
    try:
        html = render_template(
            "web/error.html",
            error=body,
            title=labels.ERROR_TITLES.get(response.status_code, labels.ERROR_TITLES[400]),
            explanation=labels.ERROR_EXPLANATIONS.get(body["code"]),
            message=labels.translate(str(body.get("message") or "")),
            error_id=response.headers.get("X-Error-Id"),
        )
    except Exception:  # the JSON envelope is still a correct answer
        log.exception("cannot render the error page for %s", request.path)
        return response
    page = Response(html, status=response.status_code, mimetype="text/html")
    for name in KEPT_HEADERS:
        if name in response.headers:
            page.headers[name] = response.headers[name]
    return page


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.after_request(as_page)
