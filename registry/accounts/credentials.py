"""Changing one's own password, and what must end with the old one (ASVS 5.0 6.2.2, 7.4.3).

The web pages' sessions live in a later feature (registry/web), so this module announces the
change with :data:`password_changed` and that feature ends the user's sessions there; imports
keep pointing one way (DESIGN.md §3). API tokens are this feature's own: the caller chooses
whether they end too (ASVS 7.4.3 asks that the user be given that option).
"""

from __future__ import annotations

from blinker import Namespace
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.accounts import lockout
from registry.accounts.models import ApiToken, User
from registry.accounts.passwords import hash_password, password_problems, verify_password
from registry.accounts.services import SignInRefused, now
from registry.audit.services import record
from registry.core.actor import Actor
from registry.core.errors import FieldError, validation_failed

_signals = Namespace()

#: Sent inside the change's transaction with ``session``; the sender is the :class:`User`.
#: A receiver that raises undoes the change.
password_changed = _signals.signal("accounts.password-changed")


class CurrentPasswordWrong(SignInRefused):
    """The current password given with a change is wrong: counted like a failed sign-in, since
    a stolen session could otherwise guess it without limit (ASVS 6.3.1)."""

    def __init__(self) -> None:
        super().__init__()
        self.message = "the current password is wrong"
        self.errors = [FieldError.of("current_password", "wrong password")]


def change_password(
    session: Session,
    *,
    actor: Actor,
    current_password: str,
    new_password: str,
    end_api_tokens: bool,
) -> User:
    """Replace the actor's own password.

    The current password must be right (:class:`CurrentPasswordWrong`, counted by the lockout
    like a failed sign-in: the caller commits the count); the new one must pass the same rules
    as at account creation and differ from the current one (422 naming ``new_password``).
    Ends the user's API tokens when ``end_api_tokens``; sends :data:`password_changed` (the web
    sessions end there). One ``user.password_changed`` event.
    """
    user = session.get_one(User, actor.user_id)
    instant = now()
    valid = verify_password(user.password_hash, current_password)
    locked = lockout.is_locked(user, instant)
    if locked or not valid:
        if not locked:  # attempts while locked are not counted (lockout.py)
            lockout.record_failure(session, user, instant)
        raise CurrentPasswordWrong()
    lockout.record_success(user)
    problems = password_problems(new_password, email=user.email)
    if new_password == current_password:
        problems.append("choose a password different from the current one")
    validation_failed([FieldError("new_password", tuple(problems))] if problems else [])
    user.password_hash = hash_password(new_password)
    ended = 0
    if end_api_tokens:
        live = select(ApiToken.id).where(
            ApiToken.user_id == user.id,
            ApiToken.revoked_dt.is_(None),
            ApiToken.expires_dt > instant,
        )
        ended = len(session.scalars(live).all())
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_dt.is_(None))
            .values(revoked_dt=instant)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    record(
        session,
        actor=actor,
        action="user.password_changed",
        subject_type="user",
        subject_id=user.id,
        payload={"api_tokens_ended": ended},
    )
    password_changed.send(user, session=session)
    return user
