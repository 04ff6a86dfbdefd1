"""The mail outbox: messages queued in the database with the change that caused them, and
delivered later by ``flask --app wsgi clearing send-mail``.

Queuing in the same transaction as the change (the transactional outbox) means a reminder
exists exactly when its run committed, and a mail server that is down delays mail but never
loses it or blocks the run. Delivery:

* ``smtp_url`` set (``smtp://user:password@host:port``; ``smtp+starttls://`` upgrades with
  STARTTLS, port 587 by default; ``smtps://`` is TLS from the start, port 465): sent with
  :mod:`smtplib`, transport ``smtp``.
* otherwise: written as an RFC 5322 ``.eml`` file (CRLF line endings, UTF-8 MIME) into
  ``<instance>/mail/<message id>.eml``, transport ``file`` — open it in any mail client.

Each message is delivered and marked (``sent_dt``, ``transport``) in a transaction of its own,
so running the command again sends nothing twice. The one window is a crash between the SMTP
server accepting a message and the commit: that message is sent again on the next run, with
the same ``Message-ID`` so the receiving side can drop the duplicate (at-least-once delivery).
A message the server refuses stays queued and is reported; the others still go.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clearing.models import OutboxMessage
from registry.config import Settings
from registry.core import clock
from registry.core.db import Database

SMTP_TIMEOUT_SECONDS = 30
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


def queue(
    session: Session,
    *,
    recipient: str,
    subject: str,
    body: str,
    subject_type: str,
    subject_id: uuid.UUID,
) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction."""
    message = OutboxMessage(
        id=uuid.uuid4(),
        recipient=recipient,
        subject=subject[:300],
        body=body,
        subject_type=subject_type,
        subject_id=subject_id,
        created_dt=clock.now(),
    )
    session.add(message)
    return message


def compose(message: OutboxMessage, sender: str) -> EmailMessage:
    """The RFC 5322 message for an outbox row; its Message-ID is derived from the row's id."""
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_dt)
    domain = sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = f"<{message.id}@{domain}>"
    email.set_content(message.body, charset="utf-8")
    return email


class MailUnavailable(RuntimeError):
    """The SMTP server cannot be reached or refuses the sign-in: every message stays queued."""


@dataclass
class Delivery:
    """The outcome of one ``send-mail`` run."""

    transport: str
    sent: list[uuid.UUID] = field(default_factory=list)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)


def mail_folder(settings: Settings) -> Path:
    return settings.instance_path / "mail"


def write_eml(folder: Path, message_id: uuid.UUID, email: EmailMessage) -> Path:
    """Write ``<id>.eml`` atomically (a temporary file renamed), so a reader never sees half a
    message and writing it again replaces it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{message_id}.eml"
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".eml.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(email.as_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def open_smtp(url: str) -> smtplib.SMTP:
    """A signed-in SMTP connection for ``url`` (module docstring)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("smtp_url must look like smtp://user:password@host:port")
    port = parts.port or DEFAULT_PORTS[scheme]
    connection: smtplib.SMTP
    if scheme == "smtps":
        context = ssl.create_default_context()
        connection = smtplib.SMTP_SSL(
            parts.hostname, port, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        connection = smtplib.SMTP(parts.hostname, port, timeout=SMTP_TIMEOUT_SECONDS)
        if scheme == "smtp+starttls":
            connection.starttls(context=ssl.create_default_context())
    if parts.username:
        connection.login(unquote(parts.username), unquote(parts.password or ""))
    return connection


def send_pending(db: Database, settings: Settings) -> Delivery:
    """Deliver every unsent message, oldest first, each in its own transaction."""
    transport = "smtp" if settings.smtp_url else "file"
    delivery = Delivery(transport=transport)
    with db.transaction() as session:
        pending = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.sent_dt.is_(None))
                .order_by(OutboxMessage.created_dt, OutboxMessage.id)
            )
        )
    if not pending:
        return delivery
    try:
        connection = open_smtp(settings.smtp_url) if settings.smtp_url else None
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        raise MailUnavailable(f"cannot reach the mail server: {exc}; nothing was sent") from exc
    try:
        for message_id in pending:
            with db.transaction() as session:
                # Locked and re-checked: a concurrent run that got it first has marked it.
                message = session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.id == message_id, OutboxMessage.sent_dt.is_(None))
                    .with_for_update(skip_locked=True)
                ).one_or_none()
                if message is None:
                    continue
                email = compose(message, settings.mail_from)
                try:
                    if connection is not None:
                        connection.send_message(email)
                    else:
                        write_eml(mail_folder(settings), message.id, email)
                except (smtplib.SMTPException, OSError) as exc:
                    delivery.failed[message.id] = str(exc)
                    continue
                message.sent_dt = clock.now()
                message.transport = transport
                delivery.sent.append(message.id)
    finally:
        if connection is not None:
            try:
                connection.quit()
            except smtplib.SMTPException:
                connection.close()
    return delivery
