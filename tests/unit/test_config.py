"""Start-up configuration (``REGISTRY_*``) and the SQLite engine settings the service relies on.

Production must fail closed (reliability.md §0 rule 9, T27); SQLite must run in WAL with foreign
keys, a busy timeout of at least 5 s, and write transactions opened with ``BEGIN IMMEDIATE``
(rule 5).
"""

from __future__ import annotations

import secrets
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from registry.config import ConfigError, load_settings, normalise_database_url
from registry.core.db import Database, make_engine

STRONG = secrets.token_urlsafe(48)


def env(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"REGISTRY_INSTANCE_PATH": str(tmp_path / "instance"), **variables}


def production(tmp_path: Path, **variables: str) -> dict[str, str]:
    return env(
        tmp_path,
        REGISTRY_ENV="production",
        REGISTRY_SECRET_KEY=STRONG,
        REGISTRY_SIGNING_P12="/etc/registry/signing.p12",
        **variables,
    )


# Database URL ------------------------------------------------------------------------------


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    instance = (tmp_path / "instance").resolve()
    assert settings.instance_path == instance
    assert instance.is_dir()
    assert settings.database_url == f"sqlite:///{instance / 'registry.db'}"
    assert settings.is_sqlite


def test_default_instance_folder_is_instance_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.instance_path == (tmp_path / "instance").resolve()
    assert settings.env == "development"


def test_empty_database_url_means_the_default(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, REGISTRY_DATABASE_URL=""))
    assert settings.database_url.endswith("/instance/registry.db")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/reg", "postgresql+psycopg://u:p@db:5432/reg"),
        ("postgresql://u:p@db/reg", "postgresql+psycopg://u:p@db/reg"),
        ("postgresql+psycopg://u@db/reg", "postgresql+psycopg://u@db/reg"),
        ("sqlite:////var/lib/registry/r.db", "sqlite:////var/lib/registry/r.db"),
    ],
)
def test_database_url_is_normalised(tmp_path: Path, given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected
    assert load_settings(env(tmp_path, REGISTRY_DATABASE_URL=given)).database_url == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:p@db/reg",
        "postgresql+psycopg2://u@db/reg",
        "postgresql+asyncpg://u@db/reg",
        "oracle://db",
        "/var/lib/registry.db",
    ],
)
def test_unsupported_database_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="REGISTRY_DATABASE_URL"):
        load_settings(env(tmp_path, REGISTRY_DATABASE_URL=url))


# Secret key --------------------------------------------------------------------------------


def test_secret_is_generated_once_into_the_instance_folder(tmp_path: Path) -> None:
    first = load_settings(env(tmp_path))
    path = tmp_path / "instance" / "secret_key"

    assert first.secret_key_source == "generated"
    assert len(first.secret_key) >= 32
    assert path.read_text(encoding="ascii").strip() == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left over
    # Stable across restarts, so signed data stays valid.
    assert load_settings(env(tmp_path)).secret_key == first.secret_key
    assert first.secret_key not in repr(first)


@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_first_starts_agree_on_one_secret(tmp_path: Path, attempt: int) -> None:
    # Several workers starting together on a fresh instance folder: none may fail, and all
    # must sign with the same key.
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        try:
            results.append(load_settings(env(tmp_path)).secret_key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 8
    assert len(set(results)) == 1
    assert (tmp_path / "instance" / "secret_key").read_text().strip() == results[0]


def test_truncated_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="secret_key"):
        load_settings(env(tmp_path))


def test_secret_from_environment_wins(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, REGISTRY_SECRET_KEY=STRONG))
    assert settings.secret_key == STRONG
    assert settings.secret_key_source == "environment"
    assert not (tmp_path / "instance" / "secret_key").exists()


# Production guard --------------------------------------------------------------------------


def test_production_starts_with_a_proper_configuration(tmp_path: Path) -> None:
    settings = load_settings(
        production(tmp_path, REGISTRY_DATABASE_URL="postgres://registry@db/registry")
    )
    assert settings.is_production
    assert settings.debug is False
    assert settings.session_cookie_secure is True  # secure by default in production
    config = settings.flask_config()
    assert config["SECRET_KEY"] == STRONG
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["DEBUG"] is False
    assert config["TESTING"] is False


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"REGISTRY_DEBUG": "1"}, "REGISTRY_DEBUG"),
        ({"REGISTRY_DEBUG": "true"}, "REGISTRY_DEBUG"),
        ({"REGISTRY_SECRET_KEY": ""}, "REGISTRY_SECRET_KEY must be set"),
        ({"REGISTRY_SECRET_KEY": secrets.token_hex(8)}, "REGISTRY_SECRET_KEY is weak"),
        ({"REGISTRY_SECRET_KEY": "changeme"}, "REGISTRY_SECRET_KEY is weak"),
        ({"REGISTRY_SECRET_KEY": "secret"}, "REGISTRY_SECRET_KEY is weak"),
        ({"REGISTRY_SECRET_KEY": "x" * 64}, "REGISTRY_SECRET_KEY is weak"),
        ({"REGISTRY_SECRET_KEY": "changeme" * 8}, "REGISTRY_SECRET_KEY is weak"),
        ({"REGISTRY_SESSION_COOKIE_SECURE": "false"}, "REGISTRY_SESSION_COOKIE_SECURE"),
        ({"REGISTRY_SESSION_COOKIE_SECURE": "0"}, "REGISTRY_SESSION_COOKIE_SECURE"),
        ({"REGISTRY_SIGNING_P12": ""}, "REGISTRY_SIGNING_P12 is not set"),
    ],
    ids=[
        "debug-1",
        "debug-true",
        "no-secret",
        "short-secret",
        "changeme",
        "secret",
        "one-character",
        "repeated-word",
        "insecure-cookies",
        "insecure-cookies-0",
        "development-signing-key",
    ],
)
def test_production_refuses_insecure_configuration(
    tmp_path: Path, variables: dict[str, str], reason: str
) -> None:
    environ = production(tmp_path)
    environ.update(variables)
    if not environ["REGISTRY_SECRET_KEY"]:
        del environ["REGISTRY_SECRET_KEY"]
    with pytest.raises(ConfigError, match=reason):
        load_settings(environ)
    # A refused production start never writes a generated secret either.
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_production_names_every_problem_at_once(tmp_path: Path) -> None:
    environ = production(
        tmp_path,
        REGISTRY_DEBUG="yes",
        REGISTRY_SESSION_COOKIE_SECURE="off",
    )
    environ["REGISTRY_SECRET_KEY"] = "dev"
    with pytest.raises(ConfigError) as raised:
        load_settings(environ)
    message = str(raised.value)
    for name in ("REGISTRY_DEBUG", "REGISTRY_SECRET_KEY", "REGISTRY_SESSION_COOKIE_SECURE"):
        assert name in message


def test_development_allows_what_production_refuses(tmp_path: Path) -> None:
    settings = load_settings(
        env(tmp_path, REGISTRY_DEBUG="on", REGISTRY_SECRET_KEY="dev-only-but-long-" + "z" * 20)
    )
    assert settings.debug is True
    assert settings.session_cookie_secure is False


# Typed variables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGISTRY_DEBUG", "maybe"),
        ("REGISTRY_DEBUG", "2"),
        ("REGISTRY_SESSION_COOKIE_SECURE", "enabled"),
        ("REGISTRY_TOKEN_TTL_DAYS", "thirty"),
        ("REGISTRY_TOKEN_TTL_DAYS", "1.5"),
        ("REGISTRY_TOKEN_TTL_DAYS", "0"),
        ("REGISTRY_TOKEN_TTL_DAYS", "-3"),
        ("REGISTRY_TOKEN_TTL_DAYS", "99999999999"),
        ("REGISTRY_MAX_CONTENT_LENGTH", "8MB"),
        ("REGISTRY_MAX_CONTENT_LENGTH", ""),
        ("REGISTRY_ENV", "staging"),
        ("REGISTRY_ENV", "Production"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env(tmp_path, **{name: value}))


@pytest.mark.parametrize(
    ("name", "value", "attribute", "expected"),
    [
        ("REGISTRY_DEBUG", " Yes ", "debug", True),
        ("REGISTRY_DEBUG", "OFF", "debug", False),
        ("REGISTRY_SESSION_COOKIE_SECURE", "1", "session_cookie_secure", True),
        ("REGISTRY_TOKEN_TTL_DAYS", "7", "token_ttl_days", 7),
        ("REGISTRY_MAX_CONTENT_LENGTH", "1048576", "max_content_length", 1048576),
    ],
)
def test_typed_values_are_read(
    tmp_path: Path, name: str, value: str, attribute: str, expected: object
) -> None:
    settings = load_settings(env(tmp_path, **{name: value}))
    assert getattr(settings, attribute) == expected
    flask = settings.flask_config()
    assert flask["MAX_CONTENT_LENGTH"] == settings.max_content_length


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings.token_ttl_days == 30
    assert settings.max_content_length == 8 * 1024 * 1024  # a 10 MB body is refused
    assert settings.admin_password is None
    assert settings.debug is False


def test_admin_password_is_read_and_not_shown(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, REGISTRY_ADMIN_PASSWORD="bootstrap pass phrase"))
    assert settings.admin_password == "bootstrap pass phrase"
    assert "bootstrap pass phrase" not in repr(settings)


# SQLite engine -----------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "engine.db"


@pytest.fixture
def engine(sqlite_file: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    engine.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def try_begin_immediate(path: Path) -> str:
    """From an independent connection: "ok" if a write transaction can start now."""
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        other.execute("PRAGMA busy_timeout=50")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return "ok"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


def test_write_session_begins_immediate(engine: Engine, sqlite_file: Path) -> None:
    database = Database(engine)
    assert try_begin_immediate(sqlite_file) == "ok"

    session = database.session(write=True)
    try:
        session.execute(text("SELECT 1"))  # starts the transaction; nothing written yet
        assert try_begin_immediate(sqlite_file) == "database is locked"
    finally:
        session.rollback()
        session.close()
    assert try_begin_immediate(sqlite_file) == "ok"


def test_read_session_does_not_take_the_write_lock(engine: Engine, sqlite_file: Path) -> None:
    database = Database(engine)
    session = database.session(write=False)
    try:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 0
        assert session.in_transaction()
        assert try_begin_immediate(sqlite_file) == "ok"
    finally:
        session.rollback()
        session.close()


def test_transaction_commits_once_or_rolls_back(engine: Engine) -> None:
    database = Database(engine)
    with database.transaction() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))

    def fail_midway() -> None:
        with database.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        fail_midway()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT x FROM t")).scalars().all() == [1]


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        connection.execute(
            text("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id REFERENCES parent(id))")
        )
    with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as connection:
        connection.execute(text("INSERT INTO child VALUES (1, 42)"))


def test_contract_settings_default_to_inline_issue_into_the_instance(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings.contract_issue == "inline"
    assert settings.blob_root == tmp_path / "instance" / "blobs"
    assert settings.signing_p12 is None


def test_contract_issue_mode_is_checked(tmp_path: Path) -> None:
    settings = load_settings(
        env(tmp_path, REGISTRY_CONTRACT_ISSUE="deferred", REGISTRY_BLOB_PATH=str(tmp_path / "b"))
    )
    assert settings.contract_issue == "deferred"
    assert settings.blob_root == tmp_path / "b"
    with pytest.raises(ConfigError, match="REGISTRY_CONTRACT_ISSUE must be one of"):
        load_settings(env(tmp_path, REGISTRY_CONTRACT_ISSUE="later"))
