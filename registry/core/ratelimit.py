"""Rate limits on what an attacker hammers: sign-in and contract verification (Flask-Limiter).

OWASP ASVS 5.0 2.4.1 (anti-automation) and 6.3.1 (brute force), reliability.md T28. Each limit
has a name, a setting holding its rate (``REGISTRY_RATELIMIT_*``) and a key: the client address,
or the e-mail address being tried. A named limit is shared by every handler that uses it, so
guesses spread over the API and the web sign-in page (issue 7) count against one budget::

    @public
    @sign_in_limited          # per client address and per e-mail address
    @blp.arguments(...)
    def post(...): ...

The check runs before the body is parsed, so malformed attempts count too. Breaching a limit
answers 429 in the error envelope with ``Retry-After`` (seconds until a slot frees: the moving
window, so a burst at a window's edge gains nothing). Counts live in ``memory://`` (one worker
process) or a shared store such as ``redis://`` (``REGISTRY_RATELIMIT_STORAGE_URL``); if that
store fails the limits go on in memory rather than failing open or refusing everyone.

The client address is ``REMOTE_ADDR``: ``X-Forwarded-For`` counts only through the trusted
proxies configured (:func:`registry.core.http.init_app`, ASVS 4.1.3).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits.errors import ConfigurationError
from werkzeug.exceptions import HTTPException

from registry.config import ConfigError, Settings
from registry.core.http import envelope

F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "registry.ratelimit"
TOO_MANY_REQUESTS = "too many requests: retry after the number of seconds in Retry-After"
LIMITS_ATTRIBUTE = "_registry_rate_limits"
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def client_address() -> str:
    return request.remote_addr or "unknown"


def submitted_email() -> str:
    """The e-mail address a sign-in tries (JSON body or form), hashed: the limiter's store holds
    no addresses. Without one, the client address (the attempt is still counted)."""
    email: object = None
    try:
        if request.is_json:
            body = request.get_json(silent=True)
            email = body.get("email") if isinstance(body, dict) else None
        elif request.mimetype in FORM_TYPES:
            # Cache the raw body first: the handler may still want it (a JSON endpoint answers
            # 415 to a form only if it can see that a body was sent).
            request.get_data(cache=True)
            email = request.form.get("email")
    except HTTPException:  # an oversize or broken body: refused later, counted here by address
        email = None
    if not isinstance(email, str) or not email.strip():
        return "address:" + client_address()
    digest = hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()
    return "email:" + digest[:32]


@dataclass(frozen=True)
class NamedLimit:
    name: str
    setting: str  # the Settings attribute holding the rate, e.g. "10/minute;100/hour"
    key: Callable[[], str]


SIGN_IN = NamedLimit("sign_in", "ratelimit_tokens", client_address)
SIGN_IN_ACCOUNT = NamedLimit("sign_in_account", "ratelimit_tokens_per_account", submitted_email)
VERIFY = NamedLimit("verify", "ratelimit_verify", client_address)
NAMED_LIMITS = {limit.name: limit for limit in (SIGN_IN, SIGN_IN_ACCOUNT, VERIFY)}


def rate_limited(*limits: NamedLimit) -> Callable[[F], F]:
    """Decorate a handler: each request to it counts against every limit named."""

    def decorate(handler: F) -> F:
        def limited(*args: Any, **kwargs: Any) -> Any:
            guard: RegistryLimiter = current_app.extensions[EXTENSION]
            guard.check(limits)
            return handler(*args, **kwargs)

        limited.__dict__.update(handler.__dict__)  # flask-smorest docs, @public, @reads marks
        limited.__name__ = handler.__name__
        limited.__qualname__ = handler.__qualname__
        limited.__doc__ = handler.__doc__
        limited.__module__ = handler.__module__
        limited.__wrapped__ = handler  # type: ignore[attr-defined]
        setattr(limited, LIMITS_ATTRIBUTE, tuple(limit.name for limit in limits))
        return limited  # type: ignore[return-value]

    return decorate


# The sign-in limits, for POST /api/v1/tokens and the web sign-in form alike.
sign_in_limited = rate_limited(SIGN_IN, SIGN_IN_ACCOUNT)
verify_limited = rate_limited(VERIFY)


class RegistryLimiter:
    """One Flask-Limiter per app (tests build several apps in one process), with one guard per
    named limit: a function decorated by Flask-Limiter whose call counts the request."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        try:
            self.limiter = Limiter(
                key_func=client_address,
                app=app,
                storage_uri=settings.ratelimit_storage_url,
                strategy="moving-window",
                in_memory_fallback_enabled=True,
                key_prefix="registry",
            )
        except ConfigurationError as exc:
            raise ConfigError(f"REGISTRY_RATELIMIT_STORAGE_URL is not usable: {exc}") from None
        self.guards: dict[str, Callable[[], None]] = {}
        for limit in NAMED_LIMITS.values():
            rate: str = getattr(settings, limit.setting)

            def count() -> None:
                """Nothing to do: calling the decorated guard is the count."""

            count.__name__ = count.__qualname__ = f"registry_rate_limit_{limit.name}"
            decorate = self.limiter.shared_limit(rate, scope=limit.name, key_func=limit.key)
            self.guards[limit.name] = decorate(count)

    def check(self, limits: tuple[NamedLimit, ...]) -> None:
        """Count this request against each limit; 429 (:class:`RateLimitExceeded`) when over."""
        for limit in limits:
            self.guards[limit.name]()

    def retry_after(self) -> int:
        """Whole seconds until the breached limit admits a request again (at least 1)."""
        breached = self.limiter.current_limit
        if breached is None:
            return 1
        return max(1, math.ceil(breached.window.reset_time - time.time()))

    def reset(self) -> None:
        """Forget every count (an operator clearing a mistaken block; tests)."""
        self.limiter.reset()


def handle_rate_limit_exceeded(_error: RateLimitExceeded) -> Response:
    guard: RegistryLimiter = current_app.extensions[EXTENSION]
    seconds = guard.retry_after()
    response = envelope(429, "too_many_requests", f"too many requests; retry in {seconds} seconds")
    response.headers["Retry-After"] = str(seconds)  # RFC 9110 §10.2.3, delay-seconds
    return response


def init_app(app: Flask) -> None:
    settings: Settings = app.config["REGISTRY_SETTINGS"]
    app.extensions[EXTENSION] = RegistryLimiter(app, settings)
    app.register_error_handler(RateLimitExceeded, handle_rate_limit_exceeded)
