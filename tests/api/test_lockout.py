"""Account lockout with back-off (registry/accounts/lockout.py; ASVS 5.0 6.3.1, NIST 800-63B
§5.2.2): wrong passwords lock the account for growing periods, a locked account answers exactly
like a wrong password, the lock is never extended by attempts made during it, a success resets
the count, and at 100 consecutive failures only the operator unlocks it.

Time passing is simulated by moving ``locked_until_dt`` into the past, as the token tests move
``expires_dt``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts import lockout
from registry.accounts.models import User
from registry.audit.models import AuditEvent
from registry.core.actor import Role
from tests.conftest import Api
from tests.factories import PASSWORD, Factory

WRONG = "a wrong password, long enough"


@pytest.fixture
def user(factory: Factory) -> User:
    return factory.user(factory.organisation("university"), Role.TTO, email="tto@lockout.test")


def attempt(api: Api, email: str, password: str) -> Any:
    return api.post("/tokens", json={"email": email, "password": password})


def reload(session: Session, user: User) -> User:
    session.expire_all()
    fresh = session.get(User, user.id)
    assert fresh is not None
    return fresh


def lock_events(session: Session, user: User) -> list[AuditEvent]:
    statement = select(AuditEvent).where(
        AuditEvent.action == "user.locked", AuditEvent.subject_id == str(user.id)
    )
    return list(session.scalars(statement))


def expire_lock(session: Session, user: User) -> None:
    user = reload(session, user)
    user.locked_until_dt = datetime.now(UTC) - timedelta(seconds=1)
    session.flush()


def refusal(response: Any) -> tuple[int, Any, str | None]:
    """What a client sees of a refused sign-in (everything but timing)."""
    return response.status_code, response.get_json(), response.headers.get("WWW-Authenticate")


def test_the_back_off_schedule() -> None:
    schedule = [lockout.lock_duration(n) for n in range(1, 14)]
    minute = timedelta(minutes=1)
    assert schedule[:4] == [None] * 4
    assert schedule[4:11] == [minute * m for m in (1, 2, 4, 8, 16, 32, 60)]
    assert schedule[11:] == [timedelta(hours=1)] * 2
    assert lockout.lock_duration(10**6) == timedelta(hours=1)  # no overflow
    assert lockout.LIMIT <= 100  # NIST SP 800-63B §5.2.2


def test_failures_below_the_threshold_do_not_lock_and_success_resets(
    api: Api, user: User, session: Session
) -> None:
    for _ in range(lockout.THRESHOLD - 1):
        assert attempt(api, user.email, WRONG).status_code == 401
    assert reload(session, user).failed_logins == lockout.THRESHOLD - 1
    assert reload(session, user).locked_until_dt is None

    assert attempt(api, user.email, PASSWORD).status_code == 201

    assert reload(session, user).failed_logins == 0
    # The count starts again: four more failures still do not lock.
    for _ in range(lockout.THRESHOLD - 1):
        attempt(api, user.email, WRONG)
    assert attempt(api, user.email, PASSWORD).status_code == 201


def test_the_fifth_failure_locks_and_a_locked_account_looks_like_a_wrong_password(
    api: Api, user: User, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong = [attempt(api, user.email, WRONG) for _ in range(lockout.THRESHOLD)]
    before = datetime.now(UTC)

    locked = attempt(api, user.email, PASSWORD)

    # The right password is refused, with exactly the answer a wrong one gets.
    assert refusal(locked) == refusal(wrong[0]) == refusal(wrong[-1])
    assert locked.status_code == 401
    assert locked.get_json()["message"] == "e-mail or password is wrong"
    assert refusal(attempt(api, "nobody@lockout.test", PASSWORD)) == refusal(locked)
    fresh = reload(session, user)
    assert fresh.failed_logins == lockout.THRESHOLD
    assert fresh.locked_until_dt is not None
    assert before + timedelta(seconds=50) < fresh.locked_until_dt <= before + timedelta(minutes=1)
    # One audit event for the lock; a log line naming the user, never the password.
    events = lock_events(session, user)
    assert len(events) == 1
    assert events[0].actor_id is None
    assert json.loads(events[0].payload)["failed_logins"] == lockout.THRESHOLD
    assert f"user {user.id} locked until" in caplog.text
    assert WRONG not in caplog.text
    assert PASSWORD not in caplog.text


def test_attempts_while_locked_are_not_counted_and_do_not_extend_the_lock(
    api: Api, user: User, session: Session
) -> None:
    for _ in range(lockout.THRESHOLD):
        attempt(api, user.email, WRONG)
    until = reload(session, user).locked_until_dt

    for password in (WRONG, WRONG, PASSWORD, WRONG):
        assert attempt(api, user.email, password).status_code == 401

    fresh = reload(session, user)
    assert (fresh.failed_logins, fresh.locked_until_dt) == (lockout.THRESHOLD, until)
    assert len(lock_events(session, user)) == 1


def test_each_failure_after_a_lock_doubles_it_and_success_clears_it(
    api: Api, user: User, session: Session
) -> None:
    for _ in range(lockout.THRESHOLD):
        attempt(api, user.email, WRONG)
    for expected in (2, 4, 8):
        expire_lock(session, user)
        start = datetime.now(UTC)
        assert attempt(api, user.email, WRONG).status_code == 401
        until = reload(session, user).locked_until_dt
        assert until is not None
        assert until - start == pytest.approx(timedelta(minutes=expected), abs=timedelta(seconds=5))
    assert len(lock_events(session, user)) == 4

    expire_lock(session, user)
    assert attempt(api, user.email, PASSWORD).status_code == 201
    fresh = reload(session, user)
    assert (fresh.failed_logins, fresh.locked_until_dt) == (0, None)


def test_a_locked_users_live_tokens_keep_working(api: Api, user: User, factory: Factory) -> None:
    """Someone guessing at an account does not cut its owner off (their tokens are theirs)."""
    token = factory.token(user)
    for _ in range(lockout.THRESHOLD + 3):
        attempt(api, user.email, WRONG)
    assert api.as_(token).get("/organisations").status_code == 200


def test_the_hundredth_failure_locks_until_the_operator_unlocks(
    api: Api, user: User, session: Session, app: Flask
) -> None:
    fresh = reload(session, user)
    fresh.failed_logins = lockout.LIMIT - 1
    session.flush()

    assert attempt(api, user.email, WRONG).status_code == 401

    fresh = reload(session, user)
    assert fresh.failed_logins == lockout.LIMIT
    assert fresh.locked_until_dt is None  # no expiry: locked for good
    assert attempt(api, user.email, PASSWORD).status_code == 401
    assert json.loads(lock_events(session, user)[-1].payload) == {
        "failed_logins": lockout.LIMIT,
        "locked_until_dt": None,
    }

    result = app.test_cli_runner().invoke(args=["unlock-user", "  TTO@Lockout.test"])

    assert result.exit_code == 0, result.output
    assert f"{lockout.LIMIT} failed sign-ins cleared" in result.output
    assert attempt(api, user.email, PASSWORD).status_code == 201
    unlocked = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.unlocked")).one()
    assert unlocked.subject_id == str(user.id)


def test_unlocking_an_unknown_user_fails(app: Flask, session: Session) -> None:
    result = app.test_cli_runner().invoke(args=["unlock-user", "nobody@lockout.test"])
    assert result.exit_code != 0
    assert "no user has this e-mail address" in result.output


def test_a_disabled_user_is_refused_without_counting(
    api: Api, user: User, session: Session
) -> None:
    fresh = reload(session, user)
    fresh.is_active = False
    session.flush()
    for _ in range(lockout.THRESHOLD + 1):
        assert attempt(api, user.email, WRONG).status_code == 401
    assert reload(session, user).failed_logins == 0
    assert lock_events(session, user) == []
