"""Running contracts (issue 4): deferred issue, the command line (verify, rerender, issue,
sweep, certificate), failure without a trace, and readiness.

What operators rely on: a take-up whose contract cannot be made records nothing and says so
(503, retry); a commit that fails leaves at most an orphan file, which ``sweep`` removes
without touching a contract on record; ``rerender`` reproduces the recorded hash; ``/readyz``
says when contracts cannot be issued.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.contracts.issuing import office
from registry.contracts.models import Contract
from registry.core import pdf
from registry.core.blobs import BlobStore
from registry.licences.models import Licence
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf


@pytest.fixture
def tto(factory: Factory) -> User:
    return factory.user(factory.organisation("university", name="甲大学"), "tto")


@pytest.fixture
def sme(factory: Factory) -> tuple[User, Api]:
    _, user, token = lf.enterprise_licensee(factory, name="青禾电池科技有限公司")
    return user, Api(factory.app.test_client(), token)


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["contracts", *args])


def contracts(session: Session) -> int:
    lf.reread(session)
    return int(session.scalar(select(func.count()).select_from(Contract)) or 0)


def issued(session: Session, licence: Licence) -> Contract:
    lf.reread(session)
    found = session.scalar(select(Contract).where(Contract.licence_id == licence.id))
    assert found is not None
    return found


# --- deferred issue -----------------------------------------------------------------------------


def test_deferred_contracts_are_pending_until_the_issue_command(
    app: Flask,
    factory: Factory,
    session: Session,
    tto: User,
    sme: tuple[User, Api],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(office(app), "mode", "deferred")
    user, client = sme
    licence = lf.take_up(factory, user, lf.published_offer(factory, tto))
    shown = client.get(f"/licences/{licence.id}").json
    assert shown["contract"]["status"] == "pending"
    assert shown["contract"]["sha256"] is None
    pending = client.get(f"/licences/{licence.id}/contract.pdf")
    assert pending.status_code == 404
    assert "not been issued" in pending.json["message"]

    result = cli(app, "issue")
    assert result.exit_code == 0, result.output
    assert f"issued {licence.reference}" in result.output
    assert "1 contracts issued" in result.output
    shown = client.get(f"/licences/{licence.id}").json
    assert shown["contract"]["status"] == "issued"
    assert client.get(f"/licences/{licence.id}/contract.pdf").status_code == 200
    # Nothing is left to issue, and nothing is issued twice.
    again = cli(app, "issue")
    assert "0 contracts issued" in again.output
    assert contracts(session) == 1


# --- failures leave no record -------------------------------------------------------------------


def test_without_the_cjk_font_a_take_up_is_refused_and_records_nothing(
    factory: Factory,
    session: Session,
    tto: User,
    sme: tuple[User, Api],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offer = lf.published_offer(factory, tto)
    before = lf.counts(session)
    # fontconfig finds no Chinese font, as on a machine set up without fonts-noto-cjk.
    monkeypatch.setattr(pdf, "installed_cjk_families", frozenset)
    response = sme[1].post(f"/offers/{offer.id}/take-up", json=lf.notice())
    assert response.status_code == 503
    assert response.json["code"] == "contract_unavailable"
    assert lf.counts(session) == before
    assert contracts(session) == 0


def test_a_failed_commit_leaves_only_an_orphan_that_sweep_removes(
    app: Flask,
    factory: Factory,
    session: Session,
    tto: User,
    sme: tuple[User, Api],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A store of its own: every other test's rolled-back take-up leaves an orphan in the
    # shared one, which is exactly what sweep is for but not what this test counts.
    store = BlobStore(tmp_path / "blobs")
    monkeypatch.setattr(office(app), "store", store)
    user, _ = sme
    kept = lf.take_up(factory, user, lf.published_offer(factory, tto))
    kept_digest = issued(session, kept).signed_sha256

    savepoint = session.begin_nested()
    lost = lf.take_up(factory, user, lf.published_offer(factory, tto))
    lost_digest = issued(session, lost).signed_sha256
    savepoint.rollback()  # the take-up's commit failed: no licence, no contract record
    assert store.exists(lost_digest)
    assert session.scalar(select(Contract).where(Contract.signed_sha256 == lost_digest)) is None

    young = cli(app, "sweep", "--older-than", "1")
    assert "0 orphan blobs removed" in young.output  # within the grace period: kept
    hour_ago = time.time() - 3600
    os.utime(store.path(lost_digest), (hour_ago, hour_ago))
    os.utime(store.path(kept_digest), (hour_ago, hour_ago))
    dry = cli(app, "sweep", "--older-than", "30", "--dry-run")
    assert f"would remove {lost_digest}" in dry.output
    assert store.exists(lost_digest)
    swept = cli(app, "sweep", "--older-than", "30")
    assert swept.exit_code == 0, swept.output
    assert f"removed {lost_digest}" in swept.output
    assert not store.exists(lost_digest)
    assert store.exists(kept_digest)  # on record: never swept


# --- command line -------------------------------------------------------------------------------


def test_verify_and_rerender_from_the_command_line(
    app: Flask,
    factory: Factory,
    session: Session,
    tto: User,
    sme: tuple[User, Api],
    tmp_path: Path,
) -> None:
    licence = lf.take_up(
        factory,
        sme[0],
        lf.published_offer(
            factory, tto, royalty={"kind": "running", "base": "net_sales", "rate": "3.5"}
        ),
    )
    contract = issued(session, licence)
    copy = tmp_path / "contract.pdf"
    copy.write_bytes(office(app).store.get(contract.signed_sha256))

    good = cli(app, "verify", str(copy))
    assert good.exit_code == 0, good.output
    verdict = json.loads(good.output)
    assert verdict["valid"] is True
    assert verdict["licence_reference"] == licence.reference

    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    bad = cli(app, "verify", str(copy))
    assert bad.exit_code == 1
    assert json.loads(bad.output)["valid"] is False
    copy.write_text("not a pdf")
    assert cli(app, "verify", str(copy)).exit_code == 2

    again = cli(app, "rerender", licence.reference)
    assert again.exit_code == 0, again.output
    assert f"recorded unsigned SHA-256: {contract.unsigned_sha256}" in again.output
    assert f"rendered unsigned SHA-256: {contract.unsigned_sha256}" in again.output
    unknown = cli(app, "rerender", "OL-1999-000001")
    assert unknown.exit_code == 1
    assert "no issued contract" in unknown.output


def test_the_certificate_command_prints_the_published_ca(app: Flask, api: Api) -> None:
    printed = cli(app, "certificate")
    assert printed.exit_code == 0
    assert printed.output.encode() == api.get("/contracts/certificate.pem").data


# --- readiness ----------------------------------------------------------------------------------


def test_readyz_checks_what_contracts_need(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.json
    for check in ("contract_font", "signing_key", "blob_store"):
        assert ready.json["checks"][check] == "ok"
    monkeypatch.setattr(pdf, "installed_cjk_families", frozenset)
    missing = api.get("/readyz")
    assert missing.status_code == 503
    assert "fonts-noto-cjk" in missing.json["checks"]["contract_font"]
