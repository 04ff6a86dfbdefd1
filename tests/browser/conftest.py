"""Browser tests: Debian's Chromium (/usr/bin/chromium, installed by
scripts/ensure-system-packages.sh test; never a downloaded browser) driven by Playwright for
Python, against the app served by gunicorn (tests/race/harness.py) on a committed database:
SQLite, or PostgreSQL when REGISTRY_TEST_DATABASE_URL is set (the run's own backend).

One server for the run, one browser per module; each test gets a fresh browser context (its own
cookies). Screenshots go to a temporary folder, or to ``REGISTRY_SCREENSHOTS`` (``make
screenshots`` points it at docs/screenshots/ for the README).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from registry.app import create_app
from registry.core.http import get_db
from registry.ops.migrations import alembic_config
from tests.factories import Factory
from tests.factories import offers as offer_factories
from tests.factories.databases import PG_ENV, empty_database
from tests.race import harness

CHROMIUM = "/usr/bin/chromium"
TITLE = "一种锂离子电池负极材料及其制备方法"
SME_EMAIL = "buyer@xinghuo.example.cn"
OTHER_SME_EMAIL = "buyer@qingsong.example.cn"
TTO_EMAIL = "tto@ecut.example.edu.cn"


@dataclass(frozen=True)
class Site:
    base: str
    offer_id: str
    sme_email: str
    password: str
    shots: Path

    def url(self, path: str) -> str:
        return self.base + path


def _seed(url: str, instance: Path) -> str:
    """A university's published offer and an SME's licensee, committed through the services."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    app = create_app(
        {"env": "testing", "database_url": url, "instance_path": instance,
         "secret_key": harness.SECRET}
    )  # fmt: skip
    try:
        with app.app_context(), get_db().transaction() as session:
            factory = Factory(session, app)
            university = factory.organisation(
                "university", name="华东理工大学", name_en="East China University of Technology"
            )
            tto = factory.user(university, "tto", email=TTO_EMAIL)
            patent = offer_factories.eligible_patent(
                factory,
                tto,
                title=TITLE,
                title_en="Anode material for lithium-ion batteries and its preparation",
                abstract="本发明公开了一种硅碳复合负极材料，循环寿命长，适合动力电池。",
            )
            offer = offer_factories.published(factory, tto, patent)
            enterprise = factory.organisation("enterprise", name="星火电池科技有限公司")
            factory.user(enterprise, "licensee", email=SME_EMAIL, name="王经理")
            other = factory.organisation("enterprise", name="青松储能有限公司")
            factory.user(other, "licensee", email=OTHER_SME_EMAIL, name="赵经理")
            offer_id = str(offer.id)
    finally:
        app.extensions["registry.db"].engine.dispose()
    return offer_id


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from tests.factories import PASSWORD

    folder = tmp_path_factory.mktemp("browser")
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    shots = Path(os.environ.get("REGISTRY_SCREENSHOTS") or folder / "screenshots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    with empty_database(backend, folder, "browser") as url:
        (folder / "instance").mkdir()
        offer_id = _seed(url, folder / "instance")
        with harness.gunicorn(
            "wsgi:app",
            url,
            folder,
            workers=1,
            threads=4,
            window_ms=0,
            settings={"REGISTRY_CONTRACT_ISSUE": "inline"},
        ) as port:
            yield Site(f"http://127.0.0.1:{port}", offer_id, SME_EMAIL, PASSWORD, shots)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    # Per module, never longer: while Playwright's sync API is open, its event loop counts as
    # running in this thread, so asyncio.run() (pyHanko signing a contract in a later test of
    # this process) would fail. Closed before the server stops, too: no connection is left
    # open for gunicorn's graceful shutdown to wait on.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def sign_in(page: Page, site: Site, email: str | None = None) -> None:
    page.goto(site.url("/login"))
    page.fill("#f-email", email or site.sme_email)
    page.fill("#f-password", site.password)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(site.url("/"))
