"""What registry.core.redaction removes from log lines, and what it leaves (T29)."""

from __future__ import annotations

import logging
import sys

import pytest

from registry.core.redaction import MASK, RedactSecrets, redact

TOKEN = "olr_" + "Zq9_x-Y8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8cB7aA"


@pytest.mark.parametrize(
    ("line", "secret", "kept"),
    [
        (f"headers={{'Authorization': 'Bearer {TOKEN}', 'Host': 'x'}}", TOKEN, "'Host': 'x'"),
        (f"Authorization: Bearer {TOKEN}\r\nHost: x", TOKEN, "Host: x"),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", "authorization="),
        (f"curl -H 'X-Auth: bearer {TOKEN[4:]}'", TOKEN[4:], "curl -H"),
        (f"token {TOKEN} was refused", TOKEN[4:], "olr_"),
        ('{"email": "a@b.test", "password": "pa\\"ss word"}', 'pa\\"ss word', "a@b.test"),
        ("{'email': 'a@b.test', 'new_password': 'p4ss w0rd'}", "p4ss w0rd", "a@b.test"),
        ("email=a%40b.test&password=hunter2hunter2&next=/", "hunter2hunter2", "next=/"),
        ("create_user(email=a@b.test, password=hunter2hunter2)", "hunter2hunter2", "email="),
        ("REGISTRY_SECRET_KEY=k3y-m4t3r1al-k3y-m4t3r1al", "k3y-m4t3r1al", "REGISTRY_SECRET_KEY="),
        ("signing_p12_passphrase: 'chang3d!'", "chang3d!", "signing_p12_passphrase"),
        ("GET /x?access_token=abc123secret&page=2", "abc123secret", "page=2"),
        ("smtp://mailer:M41l-P4ss@smtp.example:587", "M41l-P4ss", "smtp://mailer:"),
        (
            "('a@b.test', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g')",
            "aGFzaGhhc2g",
            "a@b.test",
        ),
    ],
)
def test_secrets_are_masked_and_the_rest_kept(line: str, secret: str, kept: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert MASK in cleaned
    assert kept in cleaned


@pytest.mark.parametrize(
    "line",
    [
        "e-mail or password is wrong",
        "POST /api/v1/tokens 201",
        "user 5f0e… locked until 2026-11-27 10:00:00+00:00 after 5 consecutive failed sign-ins",
        "licence OL-2026-000123 issued; sha256=ab12cd",
    ],
)
def test_ordinary_lines_are_untouched(line: str) -> None:
    assert redact(line) == line


def test_the_filter_cleans_message_arguments_and_traceback() -> None:
    try:
        raise RuntimeError("password=hunter2hunter2 rejected")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "sign-in %s with %s", ("failed", f"Bearer {TOKEN}"),
        exc_info,
    )  # fmt: skip

    assert RedactSecrets().filter(record) is True

    formatted = logging.Formatter().format(record)
    assert "sign-in failed with Bearer" in formatted
    assert "RuntimeError" in formatted
    for secret in (TOKEN[4:], "hunter2hunter2"):
        assert secret not in formatted
