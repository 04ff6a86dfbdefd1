"""Stored outcomes of requests sent with an ``Idempotency-Key`` (reliability.md §0 rule 1).

A key is scoped to the caller. The first request stores its fingerprint and its response in
the same transaction as its effect; a retry with the same key and body gets the stored
response, the same key with another body is refused (422), and a duplicate that arrives while
the first is still running is refused (409).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ParamSpec

from flask import Response, jsonify, request
from sqlalchemy import JSON, String, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.core import clock
from registry.core.actor import require_actor
from registry.core.canonical import canonical_json
from registry.core.db import Base
from registry.core.errors import FieldError, RegistryError, RuleViolation, ValidationFailed
from registry.core.http import get_session, handle_registry_error


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, comment="the caller")
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(200), comment="method and path")
    request_sha256: Mapped[str] = mapped_column(String(64), comment="fingerprint of the body")
    status_code: Mapped[int]
    response_body: Mapped[Any] = mapped_column(JSON)
    created_dt: Mapped[datetime]

    def __repr__(self) -> str:
        return f"<IdempotencyRecord {self.user_id} {self.key}>"


# The logic --------------------------------------------------------------------------------------

KEY_HEADER = "Idempotency-Key"
#: How long a stored outcome is kept: a key reused later runs as a new request (Stripe: 24 h).
RETENTION = timedelta(hours=24)
#: Keys are opaque client tokens; a UUID (36 characters) is the intended kind.
KEY_FORMAT = re.compile(r"[A-Za-z0-9._~:+/=-]{16,200}")
#: A key with fewer distinct characters is guessable ("aaaa…", "1111…"): refused (IETF draft §5).
MIN_DISTINCT_CHARACTERS = 8
#: The stored status of a key whose request is still running in an uncommitted transaction.
IN_PROGRESS = 0
# A refusal that says something about the *request* (validation, sign-in, role) runs again on
# a retry; only outcomes of the operation itself are stored (Stripe: "no result is saved if the
# request fails validation").
NOT_STORED = frozenset({400, 401, 403, 412, 428})

HEADER_DOC = {
    "in": "header",
    "name": KEY_HEADER,
    "required": False,
    # KEY_FORMAT, bare or as a Structured-Field string (RFC 8941), as request_key() reads it.
    "schema": {
        "type": "string",
        "pattern": '^([A-Za-z0-9._~:+/=-]{16,200}|"[A-Za-z0-9._~:+/=-]{16,200}")$',
    },
    "description": (
        "Optional; a unique value per operation, a UUID is best (16–200 characters from "
        "A–Z a–z 0–9 . _ ~ : + / = -). Scoped to the caller and kept 24 hours. A retry with the "
        "same key and body gets the stored response (header Idempotent-Replayed: true), errors "
        "of the operation included; the same key with another body or path answers 422; a "
        "retry while the first request is still running answers 409 — retry it later. A "
        f"key of fewer than {MIN_DISTINCT_CHARACTERS} different characters is too easy to "
        "guess and answers 400."
    ),
}


class InvalidIdempotencyKey(RegistryError):
    status = 400
    code = "invalid_idempotency_key"

    def __init__(self, message: str) -> None:
        super().__init__(message, [FieldError.of(KEY_HEADER, message)])


class IdempotencyKeyReused(ValidationFailed):
    """The key was used for a different request (IETF draft: 422)."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        message = "this Idempotency-Key was used for a different request; use a new key"
        super().__init__(message, [FieldError.of(KEY_HEADER, message)])


class IdempotencyConflict(RuleViolation):
    """A request with the same key is being processed right now (IETF draft: 409)."""

    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is in progress; retry to get its result",
            [FieldError.of(KEY_HEADER, "in progress")],
        )


def request_key() -> str | None:
    """The request's key, or ``None`` without one; 400 when malformed or sent twice."""
    values = request.headers.getlist(KEY_HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidIdempotencyKey("send one Idempotency-Key header, not several")
    key = values[0].strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # a Structured-Field string (RFC 8941)
        key = key[1:-1]
    if not KEY_FORMAT.fullmatch(key):
        raise InvalidIdempotencyKey(
            "an Idempotency-Key is 16 to 200 characters from A-Z a-z 0-9 . _ ~ : + / = -"
        )
    if len(set(key)) < MIN_DISTINCT_CHARACTERS:
        raise InvalidIdempotencyKey("this Idempotency-Key is too easy to guess; send a UUID")
    return key


def fingerprint(body: Any) -> str:
    """SHA-256 of the body's canonical JSON: key order and white space do not matter."""
    try:
        text = canonical_json(body)
    except TypeError:  # floats: their text is the fingerprint (the body is refused later)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stored(session: Session, user_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    return session.execute(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def claim_key(
    session: Session, *, user_id: uuid.UUID, key: str, endpoint: str, request_sha256: str
) -> IdempotencyRecord:
    """The caller's record for ``key``: the stored outcome, or a new one marked in progress.

    The new record is inserted before the operation runs, in its transaction. On PostgreSQL a
    concurrent request with the same key then waits on the primary key until the first
    commits, and fails with a unique violation: 409 (:class:`IdempotencyConflict`). On SQLite
    writers take turns (``BEGIN IMMEDIATE``), so the second finds the stored outcome. 422 when
    the key was used for another request (method, path or body)."""
    record = _stored(session, user_id, key)
    if record is not None and record.created_dt < clock.now() - RETENTION:
        session.delete(record)  # past retention: the key starts afresh
        session.flush()
        record = None
    if record is not None:
        if record.endpoint != endpoint or record.request_sha256 != request_sha256:
            raise IdempotencyKeyReused()
        if record.status_code == IN_PROGRESS:  # cannot be committed; defensive
            raise IdempotencyConflict()
        return record
    record = IdempotencyRecord(
        user_id=user_id,
        key=key,
        endpoint=endpoint,
        request_sha256=request_sha256,
        status_code=IN_PROGRESS,
        response_body={},
        created_dt=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        raise IdempotencyConflict() from None
    return record


def _store_refusal(session: Session, *, template: IdempotencyRecord, error: RegistryError) -> None:
    """Keep a refusal of the operation in a transaction of its own (its own was rolled back)."""
    body = handle_registry_error(error).get_json()
    session.rollback()  # also undoes claim_key's removal of an expired record
    try:
        stale = _stored(session, template.user_id, template.key)
        if stale is not None:
            if stale.created_dt >= clock.now() - RETENTION:
                return  # a concurrent retry with this key stored its outcome first
            session.delete(stale)
            session.flush()
        session.add(
            IdempotencyRecord(
                user_id=template.user_id,
                key=template.key,
                endpoint=template.endpoint,
                request_sha256=template.request_sha256,
                status_code=error.status,
                response_body=body,
                created_dt=clock.now(),
            )
        )
        session.commit()
    except (IntegrityError, OperationalError):
        # A concurrent retry with this key got there first, or the database is busy: the
        # refusal stands either way and the retry's outcome is the one kept.
        session.rollback()


def replay(record: IdempotencyRecord) -> Response:
    response = jsonify(record.response_body)
    response.status_code = record.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response


P = ParamSpec("P")


def idempotent(view: Callable[P, Any]) -> Callable[P, Any]:
    """Honour ``Idempotency-Key`` on a write endpoint (put it above flask-smorest's decorators).

    Without the header the view runs as usual. With it, scoped to the signed-in caller: a first
    request runs and its response is stored in the same transaction as its effect; a retry with
    the same method, path and body gets the stored response; another body under the same key
    answers 422; a duplicate that arrives while the first runs answers 409. Refusals by the
    operation (404, 409, 422 from the service) are stored too, so a retry sees the same answer;
    refusals of the request itself (bad key, body validation, sign-in, role: 400, 401, 403,
    422 from the schema) and server errors are not, so the retry runs afresh. Keys are kept
    :data:`RETENTION` (24 hours)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if KEY_HEADER not in request.headers:
            return view(*args, **kwargs)
        actor = require_actor()  # 401 before anything is said about the key
        key = request_key()
        assert key is not None
        session = get_session()
        record = claim_key(
            session,
            user_id=actor.user_id,
            key=key,
            endpoint=f"{request.method} {request.path}"[:200],
            request_sha256=fingerprint(request.get_json(silent=True)),
        )
        if record.status_code != IN_PROGRESS:
            return replay(record)
        try:
            response = view(*args, **kwargs)
        except RegistryError as error:
            if error.status < 500 and error.status not in NOT_STORED:
                _store_refusal(session, template=record, error=error)
            raise
        if isinstance(response, Response) and response.status_code < 400:
            record.status_code = response.status_code
            record.response_body = response.get_json()
            session.flush()
        return response

    return wrapper
