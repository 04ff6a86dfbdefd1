"""Account lockout with back-off: the per-account half of sign-in throttling (ASVS 5.0 6.3.1).

The per-address and per-e-mail rate limits (registry/core/ratelimit.py) slow a guesser down;
this bounds the guesses against one account however many addresses they come from:

* after ``THRESHOLD`` consecutive failures the account is locked for ``BASE``, doubling with
  each further failure up to ``CAP`` (5 failures: 1 min, 6: 2 min, 7: 4 min, … 11 on: 1 h);
* attempts while locked are refused without being counted, so nobody can keep extending the
  lock on someone else's account; the owner's live tokens keep working meanwhile;
* NIST SP 800-63B §5.2.2 allows "no more than 100" consecutive failed attempts on an account:
  at ``LIMIT`` the account stays locked until the operator runs
  ``flask --app wsgi unlock-user EMAIL`` (about four days of guessing at one per hour);
* a successful sign-in clears the count.

A locked account answers exactly like a wrong password (the same 401 and message, after the same
password check): a distinct answer such as 429 would tell an attacker that the e-mail address
belongs to an account, which the uniform 401 hides (ASVS 6.3.8, no account enumeration). The
per-e-mail rate limit's 429 leaks nothing, since it counts any address, registered or not.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.audit.services import record

log = logging.getLogger(__name__)

THRESHOLD = 5
BASE = timedelta(minutes=1)
CAP = timedelta(hours=1)
LIMIT = 100


def lock_duration(failures: int) -> timedelta | None:
    """How long the account is locked after its ``failures``-th consecutive failure."""
    if failures < THRESHOLD:
        return None
    doublings = min(failures - THRESHOLD, 12)  # 2**12 minutes is past the cap already
    return min(BASE * 2**doublings, CAP)


def is_locked(user: User, now: datetime) -> bool:
    if user.failed_logins >= LIMIT:
        return True
    return user.locked_until_dt is not None and user.locked_until_dt > now


def record_failure(session: Session, user: User, now: datetime) -> None:
    """Count a wrong password for ``user``; lock the account when the count calls for it.

    The increment is done in SQL, so concurrent failures are all counted (PostgreSQL holds the
    row lock until commit; SQLite has a single writer)."""
    user.failed_logins = User.failed_logins + 1
    session.flush()
    session.refresh(user, ["failed_logins"])
    failures = user.failed_logins
    duration = lock_duration(failures)
    log.info("sign-in failed for user %s (%d consecutive failures)", user.id, failures)
    if duration is None and failures < LIMIT:
        return
    user.locked_until_dt = None if failures >= LIMIT else now + duration  # type: ignore[operator]
    session.flush()
    log.warning(
        "user %s locked %s after %d consecutive failed sign-ins",
        user.id,
        "until unlocked by the operator" if failures >= LIMIT else f"until {user.locked_until_dt}",
        failures,
    )
    record(
        session,
        actor=None,
        action="user.locked",
        subject_type="user",
        subject_id=user.id,
        payload={"failed_logins": failures, "locked_until_dt": user.locked_until_dt},
    )


def record_success(user: User) -> None:
    """A correct password: the count of consecutive failures starts again."""
    if user.failed_logins or user.locked_until_dt is not None:
        user.failed_logins = 0
        user.locked_until_dt = None


def unlock(session: Session, user: User) -> None:
    """The operator lifts a lock (the only way out after ``LIMIT`` failures)."""
    failures = user.failed_logins
    user.failed_logins = 0
    user.locked_until_dt = None
    session.flush()
    record(
        session,
        actor=None,
        action="user.unlocked",
        subject_type="user",
        subject_id=user.id,
        payload={"failed_logins": failures},
    )
