"""Errors raised by services; the HTTP layer turns each into the one error envelope.

A service collects every violation it can find before raising, so a client fixes all of them in
one round trip (``FieldError`` list), as DESIGN.md §3 asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    messages: tuple[str, ...]

    @classmethod
    def of(cls, field: str, *messages: str) -> FieldError:
        return cls(field, tuple(messages))


class RegistryError(Exception):
    """Base class: ``status`` and ``code`` decide the HTTP answer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


class ValidationFailed(RegistryError):
    """Input that is well-formed JSON but wrong: the fields named are at fault (422)."""

    status = 422
    code = "validation_error"


class RuleViolation(RegistryError):
    """A business rule forbids the request in the current state (409)."""

    status = 409
    code = "rule_violation"


class Duplicate(RuleViolation):
    code = "duplicate"


class InvalidTransition(RuleViolation):
    code = "invalid_transition"


class NotFound(RegistryError):
    """Missing, or outside the caller's scope: both answer 404 so scope never leaks (§3)."""

    status = 404
    code = "not_found"

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"{what} not found")


class Unauthenticated(RegistryError):
    status = 401
    code = "unauthenticated"


class Forbidden(RegistryError):
    status = 403
    code = "forbidden"


class PreconditionFailed(RegistryError):
    status = 412
    code = "precondition_failed"


class PreconditionRequired(RegistryError):
    status = 428
    code = "precondition_required"


def validation_failed(errors: list[FieldError], message: str = "invalid input") -> None:
    """Raise :class:`ValidationFailed` when ``errors`` is not empty."""
    if errors:
        raise ValidationFailed(message, errors)
