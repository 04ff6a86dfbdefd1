"""Signing in and out, and changing one's password.

Sign-in uses the API's own check (:func:`registry.accounts.services.authenticate`: lockout
with back-off, one message for every refusal) and the same named rate limits as
``POST /api/v1/tokens``, so guesses spread over both count against one budget (ASVS 6.3.1).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from registry.accounts import credentials
from registry.accounts import services as account_services
from registry.accounts.schemas import TokenRequestSchema
from registry.core.api import Schema
from registry.core.errors import ValidationFailed
from registry.core.http import get_session
from registry.core.ratelimit import sign_in_limited
from registry.web import sessions
from registry.web.blueprint import bp, login_required, render, safe_next, signed_in
from registry.web.forms import Form, load, posted

PASSWORD_FIELDS = ("current_password", "new_password", "confirm_password")


class PasswordChangeSchema(Schema):
    current_password = ma.fields.String(required=True, validate=ma.validate.Length(max=1024))
    new_password = ma.fields.String(required=True, validate=ma.validate.Length(max=1024))
    confirm_password = ma.fields.String(required=True, validate=ma.validate.Length(max=1024))


@bp.get("/login")
def login_form() -> Any:
    form = Form({"email": ""})
    return render("login.html", form=form, next=safe_next(request.args.get("next")))


@bp.post("/login")
@sign_in_limited
def login() -> Any:
    """Sign in: a new session (and a new cookie) on success; the form again otherwise."""
    form = posted(("email", "password"))
    target = safe_next(request.form.get("next"))
    data = load(form, TokenRequestSchema())
    form.values["password"] = ""  # never sent back to the browser
    if data is None:
        return render("login.html", 422, form=form, next=target)
    session = get_session()
    try:
        user = account_services.authenticate(
            session, email=data["email"], password=data["password"]
        )
    except account_services.SignInRefused as refused:
        session.commit()  # the failure count and any lock stand (registry/accounts/lockout.py)
        form.absorb(refused, ())
        return render("login.html", 422, form=form, next=target)
    replaced = sessions.sign_out()
    if replaced:
        sessions.end(session, raw=replaced, reason="replaced")
    sessions.sign_in(sessions.start(session, user=user))
    flash(_("You are signed in."))
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> Any:
    raw = sessions.sign_out()
    if raw:
        sessions.end(get_session(), raw=raw, reason="signed_out")
    flash(_("You are signed out."))
    return redirect(url_for("web.home"), 303)


@bp.get("/account/password")
@login_required
def password_form() -> Any:
    return render("password.html", form=Form({}), end_api_tokens=True)


@bp.post("/account/password")
@login_required
@sign_in_limited  # a stolen session must not guess the current password freely
def password() -> Any:
    """Change one's password: every session of the user ends (this browser gets a new one)
    and, unless unticked, every API token too."""
    actor = signed_in()
    form = posted(PASSWORD_FIELDS)
    end_api_tokens = request.form.get("end_api_tokens") == "yes"
    data = load(form, PasswordChangeSchema())
    for name in PASSWORD_FIELDS:
        form.values[name] = ""
    if data is not None and data["new_password"] != data["confirm_password"]:
        form.add("confirm_password", _("The two new passwords differ."))
    if data is None or not form.ok:
        return render("password.html", 422, form=form, end_api_tokens=end_api_tokens)
    session = get_session()
    try:
        user = credentials.change_password(
            session,
            actor=actor,
            current_password=data["current_password"],
            new_password=data["new_password"],
            end_api_tokens=end_api_tokens,
        )
    except credentials.CurrentPasswordWrong as wrong:
        session.commit()  # counted like a failed sign-in
        form.absorb(wrong, PASSWORD_FIELDS)
        return render("password.html", 422, form=form, end_api_tokens=end_api_tokens)
    except ValidationFailed as invalid:
        form.absorb(invalid, PASSWORD_FIELDS)
        return render("password.html", 422, form=form, end_api_tokens=end_api_tokens)
    sessions.sign_in(sessions.start(session, user=user))
    flash(_("Your password is changed. Every other browser signed in as you is signed out."))
    return redirect(url_for("web.password_form"), 303)
