"""Accounts: organisations, users, API tokens and reward policies."""

from __future__ import annotations

from flask import Flask, g, request

from registry.core.actor import ACTOR_LOADER, Actor
from registry.core.api import register


def load_actor_from_bearer_token() -> Actor | None:
    """The actor behind ``Authorization: Bearer …``; anonymous when absent or invalid."""
    from registry.accounts.services import actor_of, find_token
    from registry.core.http import get_session

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    api_token = find_token(get_session(), token.strip())
    if api_token is None:
        return None
    g.api_token = api_token
    return actor_of(api_token.user)


def init_app(app: Flask) -> None:
    from registry.accounts import api, cli

    app.extensions[ACTOR_LOADER] = load_actor_from_bearer_token
    register(app, api.blp)
    cli.init_app(app)
