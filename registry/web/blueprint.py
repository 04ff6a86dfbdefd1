"""The pages' blueprint and what every page request goes through first.

Order on each request: the CSRF check of a form (Flask-WTF's synchronizer token, for the
pages only: the API takes bearer tokens, which a browser never sends by itself, so it needs
none), then the signed-in user from the session cookie (registry/web/sessions.py). Pages that
need a user send anonymous visitors to ``/login`` and back (302 from a GET, 303 from a POST).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask import session as cookie
from flask_wtf.csrf import CSRFProtect

from registry.core.actor import Actor, current_actor
from registry.web import i18n, labels, present, sessions

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)
csrf = CSRFProtect()


@bp.before_request
def _guard() -> None:
    if request.endpoint == "web.static":
        return
    csrf.protect()
    g.actor = sessions.load_actor(touch=True)


@bp.after_request
def _no_store(response: Response) -> Response:
    # A page with someone's records or a form token is never kept by a shared cache.
    if request.endpoint != "web.static" and (g.get("actor") or cookie.accessed):
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.app_context_processor
def _template_context() -> dict[str, Any]:
    return {
        "actor": template_actor(),
        "labels": labels,
        "present": present,
        "here": i18n.here,
        "switch_url": i18n.switch_url,
        "language": i18n.language,
        "html_lang": i18n.html_lang,
    }


def template_actor() -> Actor | None:
    """The signed-in user for the page's header, error pages included (never an API's)."""
    if "actor" in g:
        return page_actor()
    if not sessions.is_page_path(request.path):
        return None
    try:
        return current_actor()
    except Exception:  # an error page must render even when the database cannot answer
        return None


bp.add_app_template_filter(present.organisation_name, "present_name")
bp.add_app_template_filter(labels.translate, "translate")


def page_actor() -> Actor | None:
    actor: Actor | None = g.get("actor")
    return actor


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target:
        return url_for("web.home")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not sessions.is_page_path(parts.path)
    ):
        return url_for("web.home")
    return target


def login_required(view: F) -> F:
    """Anonymous visitors go to the sign-in page, which brings them back here."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if page_actor() is None:
            back = request.full_path if request.method == "GET" else request.path
            status = 302 if request.method == "GET" else 303
            return redirect(url_for("web.login_form", next=back.rstrip("?")), status)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def signed_in() -> Actor:
    """The page's user (call after :func:`login_required` let the request through)."""
    actor = page_actor()
    assert actor is not None
    return actor


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"web/{template}", **context), status
