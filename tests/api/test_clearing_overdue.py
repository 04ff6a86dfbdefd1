"""Overdue statements, reminders, suspension and reinstatement, and the mail outbox.

``clearing overdue`` runs through Flask's CLI runner on the test's database; ``clearing
send-mail`` delivers for real: ``.eml`` files read back with the e-mail parser, and SMTP to a
small SMTP server on a loopback socket in this process (a real smtplib conversation).
"""

from __future__ import annotations

import base64
import dataclasses
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.clearing.models import OutboxMessage, Statement, StatementKind
from registry.clearing.statements import void_statement
from registry.core import clock
from registry.licences.models import Licence, LicenceStatus
from tests.api.test_clearing_payments import assert_balanced, make_deal, pay
from tests.conftest import Api
from tests.factories import Factory


class SmtpSink:
    """Just enough of an SMTP server (RFC 5321) to receive messages: EHLO, AUTH PLAIN, MAIL,
    RCPT, DATA, QUIT, one connection at a time, on a loopback port."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, str]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as reader:
                self._session(connection, reader)

    def _session(self, connection: socket.socket, reader: Any) -> None:
        def say(text: str) -> None:
            connection.sendall(text.encode() + b"\r\n")

        say("220 sink ESMTP")
        sender, recipients = "", list[str]()
        while line := reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                say("250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME")
            elif verb == b"AUTH":
                _, user, password = base64.b64decode(line.split()[2]).split(b"\0")
                self.logins.append((user.decode(), password.decode()))
                say("235 ok")
            elif verb == b"MAIL":
                sender, recipients = line[10:].strip().decode(), list[str]()
                say("250 ok")
            elif verb == b"RCPT":
                recipients.append(line[8:].strip().decode())
                say("250 ok")
            elif verb == b"DATA":
                say("354 go ahead")
                data = b""
                while (chunk := reader.readline()) != b".\r\n":
                    data += chunk
                self.messages.append((sender, recipients, data))
                say("250 queued")
            elif verb == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink()
    yield server
    server.close()


def run_cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def mail_settings(app: Flask, tmp_path: Path) -> Iterator[Path]:
    """Mail written under this test's own instance folder; the app's settings restored."""
    original = app.config["REGISTRY_SETTINGS"]
    app.config["REGISTRY_SETTINGS"] = dataclasses.replace(
        original, instance_path=tmp_path, mail_from="clearing@registry.example.cn"
    )
    yield tmp_path / "mail"
    app.config["REGISTRY_SETTINGS"] = original


def at(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """Move the registry's clock to ``day`` (09:00 Beijing)."""
    instant = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)
    monkeypatch.setattr(clock, "today", lambda: day)
    monkeypatch.setattr(clock, "now", lambda: instant)


def outbox(session: Session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_dt)))


def events(session: Session, action: str) -> int:
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    return int(session.scalar(query) or 0)


def reload(session: Session, model: Any, id_: Any) -> Any:
    session.expire_all()
    return session.get(model, id_)


def active_deal_with_open_statement(
    factory: Factory, api: Api, session: Session
) -> tuple[Any, Statement]:
    """A licence made active by paying its lump sum, and a second statement of CNY 1,000.00
    due in 10 days (a minimum true-up), open."""
    from registry.clearing.statements import issue_statement

    deal = make_deal(factory)
    assert pay(api, deal.admin_token, deal.statement.id, "10000.00").status_code == 201
    licence = reload(session, Licence, deal.licence.id)
    assert licence.status is LicenceStatus.ACTIVE
    statement = issue_statement(
        session,
        licence=licence,
        kind=StatementKind.MINIMUM_TRUE_UP,
        amount=100_000,
        due_date=clock.today() + timedelta(days=10),
        actor=factory.actor(deal.licensee_user),
    )
    session.flush()
    return deal, statement


# Overdue, reminders, suspension, reinstatement ------------------------------------------------


def test_overdue_run_reminds_weekly_suspends_after_grace_and_payment_reinstates(
    app: Flask, api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal, statement = active_deal_with_open_statement(factory, api, session)
    colleague = factory.user(deal.licensee, "licensee", email="finance@sme.example.cn")
    due = statement.due_date

    at(monkeypatch, due)  # due today: not overdue yet
    assert "0 statements newly overdue, 0 reminders" in run_cli(app, "clearing", "overdue")
    assert outbox(session) == []

    at(monkeypatch, due + timedelta(days=1))
    output = run_cli(app, "clearing", "overdue")
    assert f"overdue {statement.number}" in output
    assert "1 statements newly overdue, 2 reminders queued, 0 licences suspended" in output
    messages = outbox(session)
    assert sorted(m.recipient for m in messages) == sorted(
        [deal.licensee_user.email, colleague.email]
    )
    reminder = messages[0]
    assert statement.number in reminder.subject
    assert "付款提醒" in reminder.subject
    for text in ("CNY 1000.00", str(due), "逾期 1 天", "1 days overdue", "第873条"):
        assert text in reminder.body
    assert reload(session, Statement, statement.id).overdue_dt is not None
    assert events(session, "statement.overdue") == 1

    # Within 7 days: no second reminder, however often the command runs.
    for days in (2, 7):
        at(monkeypatch, due + timedelta(days=days))
        assert "0 reminders queued" in run_cli(app, "clearing", "overdue")
    assert len(outbox(session)) == 2
    at(monkeypatch, due + timedelta(days=8))  # 7 days after the first reminder
    assert "2 reminders queued" in run_cli(app, "clearing", "overdue")
    assert len(outbox(session)) == 4
    assert events(session, "statement.overdue") == 1  # marked once

    # A partial payment does not stop the clock: still overdue for the rest.
    assert pay(api, deal.licensee_token, statement.id, "400.00", due).status_code == 201
    at(monkeypatch, due + timedelta(days=30))  # 30 days overdue: the grace period, not beyond
    assert "0 licences suspended" in run_cli(app, "clearing", "overdue")
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE

    at(monkeypatch, due + timedelta(days=31))  # CC Art. 873: more than 30 days overdue
    output = run_cli(app, "clearing", "overdue")
    assert f"suspended {deal.licence.reference}" in output
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.SUSPENDED
    assert events(session, "licence.suspended") == 1
    assert "0 licences suspended" in run_cli(app, "clearing", "overdue")  # once only
    shown = api.as_(deal.licensee_token).get(f"/licences/{deal.licence.id}")
    assert shown.json["status"] == "suspended"

    # Paying the rest restores the licence (the late interest billed is due today, not overdue).
    answer = pay(api, deal.licensee_token, statement.id, "600.00", due + timedelta(days=31))
    assert answer.status_code == 201, answer.json
    assert answer.json["interest_statement_id"] is not None
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE
    assert events(session, "licence.reinstated") == 1
    assert_balanced(session)


def test_a_pending_licence_is_reminded_but_never_suspended(
    app: Flask, api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = make_deal(factory)
    at(monkeypatch, deal.statement.due_date + timedelta(days=45))
    output = run_cli(app, "clearing", "overdue")
    assert "1 reminders queued, 0 licences suspended" in output
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.PENDING_PAYMENT


def test_paid_and_void_statements_are_never_overdue(
    app: Flask, api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = make_deal(factory)
    assert pay(api, paid.admin_token, paid.statement.id, "10000.00").status_code == 201
    void = make_deal(factory)
    void_statement(session, void.statement, reason="replaced", actor=factory.actor(void.admin))
    at(monkeypatch, paid.statement.due_date + timedelta(days=60))
    output = run_cli(app, "clearing", "overdue", "--date", str(clock.today()))
    assert "0 statements newly overdue, 0 reminders queued, 0 licences suspended" in output
    assert outbox(session) == []


# The outbox ------------------------------------------------------------------------------------


def queue_two_reminders(
    app: Flask, api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> Statement:
    deal, statement = active_deal_with_open_statement(factory, api, session)
    factory.user(deal.licensee, "licensee", email="finance@sme.example.cn")
    at(monkeypatch, statement.due_date + timedelta(days=3))
    assert "2 reminders queued" in run_cli(app, "clearing", "overdue")
    return statement


def test_send_mail_writes_rfc5322_eml_files_once(
    app: Flask,
    api: Api,
    factory: Factory,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    mail_settings: Path,
) -> None:
    statement = queue_two_reminders(app, api, factory, session, monkeypatch)
    assert "2 messages sent via" in run_cli(app, "clearing", "send-mail")
    files = sorted(mail_settings.glob("*.eml"))
    assert len(files) == 2
    parsed = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(str(m["To"]) for m in parsed) == sorted(m.recipient for m in outbox(session))
    for path, message in zip(files, parsed, strict=True):
        raw = path.read_bytes()
        assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line endings only
        assert message["From"] == "clearing@registry.example.cn"
        assert message["Message-ID"] == f"<{path.stem}@registry.example.cn>"
        assert statement.number in str(message["Subject"])
        assert "付款提醒" in str(message["Subject"])
        body = message.get_content()
        for text in ("CNY 1000.00", "尚欠", "outstanding", str(statement.due_date)):
            assert text in body
        assert message["Date"] is not None
    sent = outbox(session)
    assert all(m.transport == "file" and m.sent_dt is not None for m in sent)

    assert "0 messages sent" in run_cli(app, "clearing", "send-mail")  # nothing twice
    assert len(list(mail_settings.glob("*.eml"))) == 2


def test_send_mail_delivers_by_smtp_when_configured(
    app: Flask,
    api: Api,
    factory: Factory,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    mail_settings: Path,
    sink: SmtpSink,
) -> None:
    statement = queue_two_reminders(app, api, factory, session, monkeypatch)
    settings = app.config["REGISTRY_SETTINGS"]
    app.config["REGISTRY_SETTINGS"] = dataclasses.replace(
        settings, smtp_url=f"smtp://mailer%40registry:s3cr%2Ft@127.0.0.1:{sink.port}"
    )
    assert "2 messages sent via SMTP" in run_cli(app, "clearing", "send-mail")
    assert sink.logins == [("mailer@registry", "s3cr/t")]
    assert sorted(r for _, rcpts, _ in sink.messages for r in rcpts) == sorted(
        f"<{m.recipient}>" for m in outbox(session)
    )
    received = message_from_bytes(sink.messages[0][2], policy=policy.default)
    assert statement.number in str(received["Subject"])
    assert all(m.transport == "smtp" for m in outbox(session))
    assert not mail_settings.exists()  # nothing written as files

    assert "0 messages sent" in run_cli(app, "clearing", "send-mail")
    assert len(sink.messages) == 2


def test_send_mail_keeps_everything_queued_when_the_server_is_down(
    app: Flask,
    api: Api,
    factory: Factory,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    mail_settings: Path,
) -> None:
    queue_two_reminders(app, api, factory, session, monkeypatch)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = app.config["REGISTRY_SETTINGS"]
    app.config["REGISTRY_SETTINGS"] = dataclasses.replace(
        settings, smtp_url=f"smtp://127.0.0.1:{port}"
    )
    result = app.test_cli_runner().invoke(args=["clearing", "send-mail"])
    assert result.exit_code == 1
    assert "cannot reach the mail server" in result.output
    assert all(m.sent_dt is None for m in outbox(session))
