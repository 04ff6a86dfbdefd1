"""Logs without passwords or tokens (ASVS 5.0 16.2.5; reliability.md T29).

:class:`RedactSecrets` rewrites a log record's message, exception text and stack: bearer tokens
and ``Authorization`` header values, the registry's own ``olr_`` tokens, the values of
password-, secret- and token-named fields (JSON, Python reprs, forms, ``key=value``), argon2
hashes (SQL parameters) and passwords in URLs (``smtp://user:pass@host``). :func:`install` applies
it to every record as it is created, so each handler — the console, gunicorn's, a test's log
capture — sees the cleaned record, whichever library logged it. The filter class also suits a
handler configured by hand (``logging.config``: ``registry.core.redaction.RedactSecrets``).

What is logged stays useful: a token's ``olr_`` prefix, field names and everything else remain.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "[REDACTED]"

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer … / 'Authorization': 'Basic …' / authorization=…
    (
        re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+"),
        r"\1" + MASK,
    ),
    # A bearer credential anywhere else (a header echoed in an exception, a curl line).
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + MASK),
    # The registry's tokens by their prefix (registry.accounts.services.TOKEN_PREFIX).
    (re.compile(r"\bolr_[A-Za-z0-9_\-]+"), "olr_" + MASK),
    # password=…, "password": "…", 'new_password': '…', REGISTRY_SECRET_KEY=…, access_token=…
    (
        re.compile(
            r"(?i)(\b[\w-]*(?:password|passwd|passphrase|secret|token|api[_-]?key)[\w-]*"
            r"[\"']?\s*[:=]\s*)(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,&;)}\]]+)"
        ),
        r"\1" + MASK,
    ),
    # A password hash among SQL parameters.
    (re.compile(r"\$argon2(?:id|i|d)\$[A-Za-z0-9+/=$,.\-]+"), "$argon2" + MASK),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1" + MASK + "@"),
)


def redact(text: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Clean the record in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


def scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: logging reports it at emit time
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_installed = False


def install() -> None:
    """Clean every log record of this process as it is made (once, whatever calls it)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def cleaned_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        scrub(record)
        return record

    logging.setLogRecordFactory(cleaned_record)
    _installed = True
