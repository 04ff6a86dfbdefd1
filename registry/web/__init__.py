"""Web pages: server-rendered Jinja2 in Chinese and English over the same services as the API
(DESIGN.md §5, issue 7). Last in FEATURES: it may use every other feature.

* ``blueprint.py``: the blueprint, CSRF and the signed-in user on every page request;
* ``sessions.py`` and ``models.py``: sign-in sessions, apart from API tokens;
* ``i18n.py`` and ``labels.py``: languages, catalogues, dates and amounts;
* ``forms.py`` and ``present.py``: forms read with the API's schemas, terms written out;
* ``errors.py``: error pages carrying the API's error envelope;
* ``views_*.py``: the pages; ``templates/web/``: their templates; ``static/``: the style sheet.
"""

from __future__ import annotations

from flask import Flask, request

from registry.core.actor import ACTOR_LOADER, Actor, ActorLoader


def init_app(app: Flask) -> None:
    from registry.accounts.credentials import password_changed
    from registry.web import (
        errors,
        i18n,
        sessions,
        views_account,
        views_licences,
        views_patents,
        views_public,
    )
    from registry.web.blueprint import bp, csrf

    del views_account, views_licences, views_patents, views_public  # imported for their routes
    i18n.init_app(app)
    # Forms are checked by the pages' blueprint only (blueprint.py), never the API's routes.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.after_request(i18n.remember_language)
    errors.init_app(app)
    password_changed.connect(sessions.on_password_changed, weak=False)

    # A page request is authenticated by its session cookie only, an API request by its bearer
    # token only (sessions.py): the loader that core's current_actor() calls picks by path.
    bearer: ActorLoader | None = app.extensions.get(ACTOR_LOADER)

    def load_actor() -> Actor | None:
        if sessions.is_page_path(request.path):
            return sessions.load_actor(touch=False)
        return bearer() if bearer else None

    app.extensions[ACTOR_LOADER] = load_actor
