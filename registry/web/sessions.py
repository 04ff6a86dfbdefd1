"""Sign-in sessions for the web pages: server-side, revocable, apart from API tokens.

Design (ASVS 5.0 V7). Two ways were open: a per-user "session epoch" in a signed cookie, or a
table of sessions. The epoch can only end *every* session of a user at once, so signing out in
one browser would sign the user out everywhere, and a copied cookie would live on until the
next bump. A table ends exactly the session asked (7.4.1) and can still end them all. So:

* the browser holds a 256-bit random id (``secrets.token_urlsafe(32)``; 7.2.3 asks for at
  least 128 bits) inside Flask's signed, HttpOnly, SameSite=Lax session cookie (``__Host-``
  and Secure in production, registry/config.py); the table keeps only its SHA-256, so a copy
  of the database opens no session (as for API tokens);
* signing in always makes a new id and clears everything else the cookie held, the CSRF
  secret included (7.2.4: no session fixation);
* a session ends after ``web_session_idle_minutes`` without a request (7.3.1) and
  ``web_session_max_hours`` after sign-in whatever the activity (7.3.2); the last request is
  written at most once a minute, in a short transaction of its own before the page's;
* signing out ends the row (7.4.1); a password change ends all of the user's rows through
  :data:`registry.accounts.credentials.password_changed` (7.4.3), and a disabled user's
  sessions die at their next request, since every request checks ``is_active`` (7.4.2);
* a bearer token never opens a page and a session never opens the API: the two credentials
  are separate, so the API needs no CSRF defence and the pages need no token.
"""

from __future__ import annotations

import secrets
import uuid
from contextlib import closing
from datetime import datetime, timedelta

from flask import current_app, request
from flask import session as cookie
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.accounts.services import actor_of, hash_token
from registry.audit.services import record
from registry.config import Settings
from registry.core import clock
from registry.core.actor import Actor
from registry.core.http import get_db
from registry.web.models import WebSession

COOKIE_KEY = "sid"  # where the session id sits in Flask's signed cookie
TOUCH_EVERY = timedelta(minutes=1)
API_PREFIX = "/api"
PROBES = frozenset({"/healthz", "/readyz"})


def is_page_path(path: str) -> bool:
    """Pages (and their error pages) are everything but the API and the probes."""
    return not (path == API_PREFIX or path.startswith(API_PREFIX + "/") or path in PROBES)


def _settings() -> Settings:
    settings: Settings = current_app.config["REGISTRY_SETTINGS"]
    return settings


def start(session: Session, *, user: User) -> str:
    """A new session for ``user`` (who has just proved who they are); returns its id, which
    only the browser keeps. One ``session.started`` event."""
    raw = secrets.token_urlsafe(32)
    instant = clock.now()
    row = WebSession(
        id=uuid.uuid4(),
        user_id=user.id,
        token_hash=hash_token(raw),
        created_dt=instant,
        last_seen_dt=instant,
        expires_dt=instant + timedelta(hours=_settings().web_session_max_hours),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor_of(user),
        action="session.started",
        subject_type="web_session",
        subject_id=row.id,
        payload={"user_id": user.id, "expires_dt": row.expires_dt},
    )
    return raw


def end(session: Session, *, raw: str, reason: str) -> WebSession | None:
    """End the session with this id, if it is still open (one ``session.ended`` event)."""
    row = session.scalar(
        select(WebSession).where(
            WebSession.token_hash == hash_token(raw), WebSession.ended_dt.is_(None)
        )
    )
    if row is None:
        return None
    row.ended_dt = clock.now()
    row.end_reason = reason
    session.flush()
    user = session.get_one(User, row.user_id)
    record(
        session,
        actor=actor_of(user),
        action="session.ended",
        subject_type="web_session",
        subject_id=row.id,
        payload={"reason": reason},
    )
    return row


def end_all(session: Session, *, user_id: uuid.UUID, reason: str) -> int:
    """End every open session of a user; how many were open."""
    open_ids = list(
        session.scalars(
            select(WebSession.id).where(
                WebSession.user_id == user_id, WebSession.ended_dt.is_(None)
            )
        )
    )
    if open_ids:
        session.execute(
            update(WebSession)
            .where(WebSession.id.in_(open_ids))
            .values(ended_dt=clock.now(), end_reason=reason)
            .execution_options(synchronize_session=False)
        )
    return len(open_ids)


def on_password_changed(user: User, *, session: Session) -> None:
    """Every browser signed in as ``user`` must sign in again with the new password."""
    end_all(session, user_id=user.id, reason="password_changed")


def live(session: Session, raw: str, now: datetime) -> tuple[WebSession, User] | None:
    """The open session with this id and its (active) user, unless it has run out."""
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == hash_token(raw))
    ).first()
    if found is None:
        return None
    row, user = found[0], found[1]
    idle = timedelta(minutes=_settings().web_session_idle_minutes)
    if (
        row.ended_dt is not None
        or row.expires_dt <= now
        or row.last_seen_dt + idle <= now
        or not user.is_active
    ):
        return None
    return row, user


def sign_in(raw: str) -> None:
    """Put a new session id in the cookie, dropping everything the old cookie held."""
    cookie.clear()
    cookie[COOKIE_KEY] = raw


def sign_out() -> str | None:
    """Clear the cookie; the id it held (for the caller to end), if any."""
    raw = cookie.get(COOKIE_KEY)
    cookie.clear()
    return raw if isinstance(raw, str) else None


def load_actor(*, touch: bool) -> Actor | None:
    """The signed-in user of this page request, or ``None``. With ``touch`` (the first thing a
    page does, before its own transaction), records the request time once a minute."""
    raw = cookie.get(COOKIE_KEY)
    if not isinstance(raw, str) or not raw or not is_page_path(request.path):
        return None
    db = get_db()
    instant = clock.now()
    with closing(db.session(write=False)) as session:
        found = live(session, raw, instant)
        if found is None:
            cookie.pop(COOKIE_KEY, None)
            return None
        row, user = found
        actor = actor_of(user)
        due = instant - row.last_seen_dt >= TOUCH_EVERY
        row_id = row.id
    if touch and due:
        with db.transaction() as session:
            session.execute(
                update(WebSession).where(WebSession.id == row_id).values(last_seen_dt=instant)
            )
    return actor
