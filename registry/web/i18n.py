"""Languages of the pages: Simplified Chinese (the default) and English, with Flask-Babel.

The language is chosen by ``?lang=zh`` or ``?lang=en`` on any page and remembered in a cookie
for a year; without either, pages are in Chinese (the registry's users are in China; the
browser's Accept-Language is not consulted, so a page never changes language by itself).
Dates and amounts follow the language (CLDR via Babel): 2026年11月27日 / 27 Nov 2026,
¥1,234.50 / CN¥1,234.50, always two decimals for CNY; instants are shown in Beijing time.

Catalogues: ``translations/<locale>/LC_MESSAGES/messages.po`` is the source, kept in git; the
``.mo`` that gettext reads is built from it (``make translations``, run by ``make run`` and
``make test``), never committed. :func:`compile_catalogues` also builds a missing or stale one
when the app starts, so a test run straight from a fresh clone speaks Chinese too.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, current_app, request
from flask_babel import Babel, format_currency, format_date, format_datetime, get_locale

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).parent / "translations"
# ?lang= value → Babel locale. "zh_Hans_CN": gettext finds its catalogue under that name.
LANGUAGES = {"zh": "zh_Hans_CN", "en": "en"}
DEFAULT = "zh"
COOKIE_MAX_AGE = 365 * 24 * 3600
CURRENCY = "CNY"


def cookie_name() -> str:
    secure = current_app.config.get("SESSION_COOKIE_SECURE")
    return "__Host-lang" if secure else "lang"  # ASVS 5.0 3.3.1, as the session cookie


def language() -> str:
    """``zh`` or ``en`` for this request: the query, then the cookie, then the default."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(cookie_name())
    return remembered if remembered in LANGUAGES else DEFAULT


def select_locale() -> str:
    return LANGUAGES[language()]


def html_lang() -> str:
    return "zh-CN" if language() == "zh" else "en"


def remember_language(response: Response) -> Response:
    """Keep a language chosen with ``?lang=`` for the next visits."""
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get(cookie_name()) != asked:
        response.set_cookie(
            cookie_name(),
            asked,
            max_age=COOKIE_MAX_AGE,
            path="/",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            httponly=True,
            samesite="Lax",
        )
    return response


def here(**changes: object) -> str:
    """This page's path and query with ``changes`` made to the query (pagination, language)."""
    args = request.args.to_dict(flat=False)
    for name, value in changes.items():
        args[name] = [str(value)]
    # "//host/x" would leave the site (a 404 page for such a path still has a language link).
    path = "/" + request.path.lstrip("/")
    return f"{path}?{urlencode(args, doseq=True)}"


def switch_url(lang: str) -> str:
    """This page in the other language: the same path and query, ``lang`` replaced."""
    return here(lang=lang)


# Formatting -----------------------------------------------------------------------------------


def money(amount: Decimal | str | None) -> str:
    if amount is None:
        return ""
    return str(format_currency(Decimal(amount), CURRENCY))


def day(value: date | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return str(format_date(value, "long" if language() == "zh" else "d MMM y"))


def instant(value: datetime | str | None) -> str:
    """An instant (or its ISO 8601 text) in Beijing time, the app's Babel time zone, to the
    minute."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    pattern = "y年M月d日 HH:mm" if language() == "zh" else "d MMM y, HH:mm"
    return str(format_datetime(value, pattern))


def pick(texts: dict[str, str]) -> str:
    """The text in this page's language from a ``{"zh": ..., "en": ...}`` pair."""
    return texts["zh"] if language() == "zh" else texts["en"]


def current_locale() -> str:
    return str(get_locale())


# Catalogues -----------------------------------------------------------------------------------


def compile_catalogues(folder: Path = TRANSLATIONS) -> list[Path]:
    """Build each ``messages.mo`` that is missing or older than its ``.po``; the built ones.

    Written to a temporary file and renamed, so workers starting together never read half a
    file. A folder that cannot be written (an installed, read-only package) is logged and
    left: the build (``make translations``) made them there."""
    built = []
    for source in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
        target = source.with_suffix(".mo")
        if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
            continue
        try:
            with source.open("rb") as handle:
                catalogue = read_po(handle, locale=source.parts[-3])
            handle_fd, temporary = tempfile.mkstemp(dir=target.parent, suffix=".mo.tmp")
            with os.fdopen(handle_fd, "wb") as out:
                write_mo(out, catalogue)
            os.replace(temporary, target)
            built.append(target)
        except OSError as error:
            log.warning("cannot build %s: %s", target, error)
    return built


def init_app(app: Flask) -> Babel:
    compile_catalogues()
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LANGUAGES[DEFAULT])
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel = Babel(app, locale_selector=select_locale)
    filters: dict[str, Any] = {"money": money, "day": day, "instant": instant, "pick": pick}
    app.jinja_env.filters.update(filters)
    return babel
