"""Request builders for the web pages' rows of the access matrix (tests/api/test_access_matrix.py).

The credential of a page is the session cookie, so each call gets a browser of its own, signed
in as the caller through ``/login`` before the call is counted; a form also carries the CSRF
token of that browser's session. The builder hands the browser to the matrix as ``page_client``.
"""

from __future__ import annotations

from typing import Any

from tests.web.pages import csrf_token, signed_in_client


def page(call: Any, url: str) -> tuple[str, dict[str, Any]]:
    client = signed_in_client(call.api.client.application, _email(call))
    return url, {"page_client": client}


def form(call: Any, url: str, data: dict[str, Any], **kwargs: Any) -> tuple[str, dict[str, Any]]:
    client = signed_in_client(call.api.client.application, _email(call))
    return url, {
        "page_client": client,
        "data": {**data, "csrf_token": csrf_token(client)},
        **kwargs,
    }


def sign_in_form(call: Any) -> tuple[str, dict[str, Any]]:
    """Signing in (anonymous callers sign in as university A's TTO)."""
    client = signed_in_client(call.api.client.application, None)
    data = {
        "email": call.caller.user.email,
        "password": _password(),
        "csrf_token": csrf_token(client),
    }
    return "/login", {"page_client": client, "data": data}


def _email(call: Any) -> str | None:
    return None if call.member is None else str(call.member.user.email)


def _password() -> str:
    from tests.factories import PASSWORD

    return PASSWORD
