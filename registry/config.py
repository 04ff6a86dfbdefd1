"""Settings read from ``REGISTRY_*`` environment variables and validated at start-up.

Every setting has one place: the :class:`Settings` dataclass. ``load_settings`` reads the
environment, applies defaults suited to the embedded (SQLite) deployment, and refuses to start
when a production deployment would run insecurely (reliability.md §0 rule 9, OWASP ASVS V13):
debug on, a generated or weak secret, or cookies that may travel without TLS.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "testing", "production")
SECRET_FILE = "secret_key"  # noqa: S105 - a file name
MIN_SECRET_LENGTH = 32
# A random key of 32+ characters uses far more distinct characters than this; "x" * 32 or a
# tutorial word repeated ("changemechangeme…") does not.
MIN_SECRET_DISTINCT = 10
# Tokens may not outlive this (and a huge value would overflow the expiry date at sign-in).
MAX_TOKEN_TTL_DAYS = 3650
# Values people paste from tutorials; a production deployment with one of them is refused.
KNOWN_WEAK_SECRETS = frozenset({"dev", "secret", "changeme", "change-me", "development"})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class ConfigError(RuntimeError):
    """The environment describes a configuration the service refuses to run with."""


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    database_url: str
    secret_key: str = field(repr=False)
    secret_key_source: str = field(compare=False)  # "environment" or "generated"
    debug: bool = False
    session_cookie_secure: bool = False
    token_ttl_days: int = 30
    max_content_length: int = 8 * 1024 * 1024
    admin_password: str | None = field(default=None, repr=False)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def flask_config(self) -> dict[str, Any]:
        return {
            "SECRET_KEY": self.secret_key,
            "DEBUG": self.debug,
            "TESTING": self.env == "testing",
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "JSON_SORT_KEYS": False,
            # flask-smorest: OpenAPI document and self-hosted docs (no CDN, see api docs view).
            "API_TITLE": "Open Licence Registry",
            "API_VERSION": "v1",
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/api/v1",
            "OPENAPI_JSON_PATH": "openapi.json",
        }


def _flag(environ: dict[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _positive_int(
    environ: dict[str, str], name: str, default: int, maximum: int | None = None
) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, not {value}")
    return value


def normalise_database_url(url: str) -> str:
    """Pin the PostgreSQL driver to psycopg 3 whatever spelling the operator used."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith(("sqlite", "postgresql+psycopg://")):
        raise ConfigError(
            "REGISTRY_DATABASE_URL must be a sqlite:/// or postgresql:// URL, "
            f"not {url.split(':', 1)[0]!r}"
        )
    return url


def _secret_from_instance(instance_path: Path) -> str:
    """Read the development secret, creating it (mode 0600) on first run.

    Several workers may start at once: the secret is written to a private temporary file and
    hard-linked into place, so the file appears complete or not at all and the first writer wins
    (the others read its secret instead of failing or reading a half-written file).
    """
    path = instance_path / SECRET_FILE
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=instance_path, prefix=f".{SECRET_FILE}.")  # 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{path} holds no usable secret key: delete it to generate a new one, "
            "or set REGISTRY_SECRET_KEY"
        )
    return secret


def load_settings(
    environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build validated settings from the environment (``os.environ`` by default).

    ``overrides`` replaces individual fields after reading the environment (tests use it).
    Raises :class:`ConfigError` naming the variable at fault.
    """
    env_vars = dict(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    env = overrides.pop("env", None) or env_vars.get("REGISTRY_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"REGISTRY_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    production = env == "production"

    instance_path = Path(
        overrides.pop("instance_path", None)
        or env_vars.get("REGISTRY_INSTANCE_PATH")
        or Path.cwd() / "instance"
    ).resolve()
    instance_path.mkdir(parents=True, exist_ok=True)

    database_url = overrides.pop("database_url", None) or env_vars.get("REGISTRY_DATABASE_URL")
    if not database_url:
        database_url = f"sqlite:///{instance_path / 'registry.db'}"
    database_url = normalise_database_url(database_url)

    secret_key = overrides.pop("secret_key", None) or env_vars.get("REGISTRY_SECRET_KEY")
    if secret_key:
        source = "environment"
    elif production:
        raise ConfigError("REGISTRY_SECRET_KEY must be set in production (no generated secret)")
    else:
        secret_key, source = _secret_from_instance(instance_path), "generated"

    values: dict[str, Any] = {
        "env": env,
        "instance_path": instance_path,
        "database_url": database_url,
        "secret_key": secret_key,
        "secret_key_source": source,
        "debug": _flag(env_vars, "REGISTRY_DEBUG", False),
        "session_cookie_secure": _flag(env_vars, "REGISTRY_SESSION_COOKIE_SECURE", production),
        "token_ttl_days": _positive_int(
            env_vars, "REGISTRY_TOKEN_TTL_DAYS", 30, maximum=MAX_TOKEN_TTL_DAYS
        ),
        "max_content_length": _positive_int(
            env_vars, "REGISTRY_MAX_CONTENT_LENGTH", 8 * 1024 * 1024
        ),
        "admin_password": env_vars.get("REGISTRY_ADMIN_PASSWORD"),
    }
    values.update(overrides)
    settings = Settings(**values)
    if production:
        _refuse_insecure_production(settings)
    return settings


def _refuse_insecure_production(settings: Settings) -> None:
    problems = []
    if settings.debug:
        problems.append("REGISTRY_DEBUG is on")
    if settings.secret_key_source != "environment":  # noqa: S105 - a source label
        problems.append("the secret key was generated, not configured")
    if (
        len(settings.secret_key) < MIN_SECRET_LENGTH
        or settings.secret_key.lower() in KNOWN_WEAK_SECRETS
        or len(set(settings.secret_key)) < MIN_SECRET_DISTINCT
    ):
        problems.append(f"REGISTRY_SECRET_KEY is weak (use {MIN_SECRET_LENGTH}+ random characters)")
    if not settings.session_cookie_secure:
        problems.append("REGISTRY_SESSION_COOKIE_SECURE is off (cookies would travel without TLS)")
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))
