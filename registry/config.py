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

import limits

ENVIRONMENTS = ("development", "testing", "production")
# When a licence's contract is made: in the take-up request (default), or later by
# ``flask contracts issue`` run by a scheduler or worker (DESIGN.md §6, beyond one machine).
CONTRACT_ISSUE_MODES = ("inline", "deferred")
SECRET_FILE = "secret_key"  # noqa: S105 - a file name
MIN_SECRET_LENGTH = 32
# A random key of 32+ characters uses far more distinct characters than this; "x" * 32 or a
# tutorial word repeated ("changemechangeme…") does not.
MIN_SECRET_DISTINCT = 10
# Tokens may not outlive this (and a huge value would overflow the expiry date at sign-in).
MAX_TOKEN_TTL_DAYS = 3650
# Values people paste from tutorials; a production deployment with one of them is refused.
KNOWN_WEAK_SECRETS = frozenset({"dev", "secret", "changeme", "change-me", "development"})
# Rate limits (limits notation, ";" between several): sign-in per client address and per e-mail
# address tried, contract verification per client address (ASVS 5.0 2.4.1, 6.3.1; T28).
DEFAULT_RATELIMIT_TOKENS = "10/minute;100/hour"
DEFAULT_RATELIMIT_TOKENS_PER_ACCOUNT = "5/minute;30/hour"
DEFAULT_RATELIMIT_VERIFY = "20/minute;200/hour"
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
    blob_path: Path | None = None  # signed contracts; <instance>/blobs when unset
    signing_p12: str | None = None
    signing_p12_passphrase: str | None = field(default=None, repr=False)
    timestamp_url: str | None = None
    contract_issue: str = "inline"
    verify_max_bytes: int = 5 * 1024 * 1024
    smtp_url: str | None = field(default=None, repr=False)  # smtp://user:pass@host:port
    mail_from: str = "registry@localhost"
    suspend_after_days: int = 30  # overdue this long: the licence is suspended (CC Art. 873)
    settlement_fee_rate: int = 0  # hundredths of a percent of each payment
    minimum_payout: int = 0  # fen; smaller balances are carried forward
    checkpoint_key: str | None = None  # Ed25519 PEM; <instance>/checkpoint.key when unset
    checkpoint_origin: str = "localhost/open-licence-registry"  # names the log in checkpoints
    # memory:// counts per worker process; several workers or hosts share redis://host:6379
    ratelimit_storage_url: str = field(default="memory://", repr=False)
    ratelimit_tokens: str = DEFAULT_RATELIMIT_TOKENS
    ratelimit_tokens_per_account: str = DEFAULT_RATELIMIT_TOKENS_PER_ACCOUNT
    ratelimit_verify: str = DEFAULT_RATELIMIT_VERIFY
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed; 0 = none,
    # so a client cannot choose the address its rate limits count against (ASVS 5.0 4.1.3).
    trusted_proxies: int = 0
    # Web sign-in sessions (registry/web/sessions.py): ended after this long without a request
    # and this long after signing in, whatever the activity (ASVS 5.0 7.3.1, 7.3.2).
    web_session_idle_minutes: int = 30
    web_session_max_hours: int = 12

    @property
    def blob_root(self) -> Path:
        return self.blob_path or self.instance_path / "blobs"

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
            # ASVS 5.0 3.3.1: "__Host-" binds the cookie to this host, path "/" and TLS; browsers
            # refuse such a cookie without Secure, so plain-HTTP development keeps a plain name.
            "SESSION_COOKIE_NAME": "__Host-session" if self.session_cookie_secure else "session",
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


def _whole(environ: dict[str, str], name: str, default: int, maximum: int) -> int:
    """A whole number from 0 to ``maximum`` (zero allowed, unlike :func:`_positive_int`)."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not 0 <= value <= maximum:
        raise ConfigError(f"{name} must be between 0 and {maximum}, not {value}")
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
        "blob_path": Path(env_vars["REGISTRY_BLOB_PATH"])
        if env_vars.get("REGISTRY_BLOB_PATH")
        else None,
        "signing_p12": env_vars.get("REGISTRY_SIGNING_P12") or None,
        "signing_p12_passphrase": env_vars.get("REGISTRY_SIGNING_P12_PASSPHRASE"),
        "timestamp_url": env_vars.get("REGISTRY_TIMESTAMP_URL") or None,
        "contract_issue": env_vars.get("REGISTRY_CONTRACT_ISSUE", "inline"),
        "verify_max_bytes": _positive_int(
            env_vars, "REGISTRY_CONTRACT_VERIFY_MAX_BYTES", 5 * 1024 * 1024
        ),
        "smtp_url": env_vars.get("REGISTRY_SMTP_URL") or None,
        "mail_from": env_vars.get("REGISTRY_MAIL_FROM", "registry@localhost"),
        "suspend_after_days": _positive_int(env_vars, "REGISTRY_SUSPEND_AFTER_DAYS", 30),
        "settlement_fee_rate": _whole(env_vars, "REGISTRY_SETTLEMENT_FEE_BASIS", 0, 10000),
        "minimum_payout": _whole(env_vars, "REGISTRY_MINIMUM_PAYOUT_FEN", 0, 10**12),
        "checkpoint_key": env_vars.get("REGISTRY_CHECKPOINT_KEY") or None,
        "checkpoint_origin": env_vars.get(
            "REGISTRY_CHECKPOINT_ORIGIN", "localhost/open-licence-registry"
        ),
        "ratelimit_storage_url": env_vars.get("REGISTRY_RATELIMIT_STORAGE_URL") or "memory://",
        "ratelimit_tokens": env_vars.get("REGISTRY_RATELIMIT_TOKENS", DEFAULT_RATELIMIT_TOKENS),
        "ratelimit_tokens_per_account": env_vars.get(
            "REGISTRY_RATELIMIT_TOKENS_PER_ACCOUNT", DEFAULT_RATELIMIT_TOKENS_PER_ACCOUNT
        ),
        "ratelimit_verify": env_vars.get("REGISTRY_RATELIMIT_VERIFY", DEFAULT_RATELIMIT_VERIFY),
        "trusted_proxies": _whole(env_vars, "REGISTRY_TRUSTED_PROXIES", 0, 10),
        "web_session_idle_minutes": _positive_int(
            env_vars, "REGISTRY_WEB_SESSION_IDLE_MINUTES", 30, maximum=24 * 60
        ),
        "web_session_max_hours": _positive_int(
            env_vars, "REGISTRY_WEB_SESSION_MAX_HOURS", 12, maximum=24 * 7
        ),
    }
    values.update(overrides)
    if values["contract_issue"] not in CONTRACT_ISSUE_MODES:
        raise ConfigError(
            f"REGISTRY_CONTRACT_ISSUE must be one of {', '.join(CONTRACT_ISSUE_MODES)}, "
            f"not {values['contract_issue']!r}"
        )
    origin = values["checkpoint_origin"]
    if not origin or "+" in origin or any(c.isspace() for c in origin):
        # It is the signing key's name too (c2sp.org/signed-note): no spaces, no '+'.
        raise ConfigError(f"REGISTRY_CHECKPOINT_ORIGIN must have no spaces or '+', not {origin!r}")
    for name in ("tokens", "tokens_per_account", "verify"):
        _check_rate_limit(f"REGISTRY_RATELIMIT_{name.upper()}", values[f"ratelimit_{name}"])
    settings = Settings(**values)
    if production:
        _refuse_insecure_production(settings)
    return settings


def _check_rate_limit(name: str, value: str) -> None:
    """A limit the service can enforce: "10/minute", "5 per minute;30/hour" (limits notation)."""
    try:
        parsed = limits.parse_many(value)
    except ValueError:
        parsed = []
    if not parsed or any(item.amount < 1 for item in parsed):  # "0/minute" would refuse all
        raise ConfigError(
            f"{name} must be a rate limit such as '10/minute;100/hour', not {value!r}"
        )


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
    if not settings.signing_p12:
        problems.append(
            "REGISTRY_SIGNING_P12 is not set (contracts would be signed by a development CA)"
        )
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems))
