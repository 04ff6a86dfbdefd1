"""Driving the web pages through Flask's test client as a browser would: sign in through the
form, take the CSRF token from a page, read the error code from an error page."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ERROR_CODE = re.compile(r'data-error-code="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/verify") -> str:
    """The form token of the client's session, from any page with a form."""
    html = client.get(path).get_data(as_text=True)
    found = TOKEN.search(html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response


def signed_in_client(app: Flask, email: str | None) -> FlaskClient:
    """A browser of its own (its own cookies), signed in as ``email`` unless ``None``."""
    client = app.test_client()
    if email is not None:
        sign_in(client, email)
    return client


def envelope_of(response: Any) -> dict[str, Any] | None:
    """The error envelope's code as an error page shows it (``data-error-code``)."""
    if response.mimetype != "text/html":
        return None
    found = ERROR_CODE.search(response.get_data(as_text=True))
    return {"code": found.group(1)} if found else None


def text(response: Any) -> str:
    """The page's visible text, roughly: tags dropped, white space collapsed."""
    html = re.sub(
        r"<(script|style)[^>]*>.*?</\1>", " ", response.get_data(as_text=True), flags=re.S
    )
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
