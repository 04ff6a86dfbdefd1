"""The registers an export holds, each read through its own feature's visibility rules.

Every register is read with the function the feature's own list endpoint uses
(``visible_patents``, ``visible_offers``, ``visible_licences``, ``visible_statements``,
``visible_payments``, ``visible_runs``, ``visible_lines``), so an export shows a caller exactly
the rows that endpoint lists — auditors their granted organisations only — and refuses the
roles it refuses. No permission rule lives here. Rows come in a stable order (by their key, or
creation time then id), so two exports of an unchanged registry are byte for byte equal.

Cells are text: money as ``"1234.50"``, instants in UTC with microseconds and ``Z``, dates ISO,
ids as UUIDs. Free text that a spreadsheet would read as a formula (starting ``= + - @``, tab
or carriage return) is prefixed with ``'`` (OWASP "CSV Injection"; ASVS 5.0 1.2.10).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.export_format import row_hash, write_csv
from registry.clearing import payments, settlement_views, statements
from registry.clearing.models import Payment, SettlementLine, SettlementRun, Statement
from registry.contracts.models import Contract
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.canonical import format_instant
from registry.core.errors import NotFound
from registry.core.money import format_money, from_fen
from registry.licences import services as licence_services
from registry.licences.models import Licence
from registry.offers import search
from registry.offers.models import OfferStatus
from registry.patents import services as patent_services
from registry.patents.models import Patent, PatentOwner

# The operator exporting from the shell (``flask export``) reads as an admin: every row.
OPERATOR: Final = Actor(
    uuid.UUID(int=0), uuid.UUID(int=0), Role.ADMIN, "operator@localhost", audit_scope=None
)
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


class Plain(str):
    """Server-made text (amounts, codes) written as it is, never prefixed."""


def fen(amount: int | None) -> Plain | None:
    return None if amount is None else Plain(format_money(from_fen(amount)))


def money(amount: Decimal | None) -> Plain | None:
    return None if amount is None else Plain(format_money(amount))


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Plain):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return "; ".join(cell(item) for item in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


Reader = Callable[[Session, Actor], Iterable[Sequence[object]]]


@dataclass(frozen=True)
class Register:
    name: str
    key: str  # the column that names a row (unique)
    columns: tuple[str, ...]
    read: Reader


@dataclass(frozen=True)
class Table:
    register: Register
    rows: list[list[str]]

    def csv(self) -> bytes:
        return write_csv(self.register.columns, self.rows)

    def row_hashes(self) -> list[list[str]]:
        """``[key, sha256]`` per row, in order: what the manifest lists."""
        at = self.register.columns.index(self.register.key)
        return [[row[at], row_hash(row)] for row in self.rows]


def _owner(owner: PatentOwner) -> str:
    shares = f"title {owner.title_share}% income {owner.income_share}%"
    return f"{owner.organisation.name} ({owner.organisation_id}) {shares}"


def _patents(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    statement = patent_services.visible_patents(actor, {}).order_by(None)
    for p in session.scalars(statement.order_by(Patent.application_number)):
        yield (
            p.id, p.application_number, p.patent_type, p.title, p.title_en, p.filing_date,
            p.grant_date, p.expiry_date, p.legal_status, p.annual_fees_paid_through, p.ipc,
            [_owner(owner) for owner in p.owners], p.version, p.updated_dt,
        )  # fmt: skip


def _offers(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    # The offers list shows one status at a time (the status a reader sees today): all of them.
    today = clock.today()
    found = [
        (offer, status)
        for status in OfferStatus
        for offer in session.scalars(search.visible_offers(actor, {"status": status}, today))
    ]
    for o, status in sorted(found, key=lambda item: (item[0].created_dt, str(item[0].id))):
        yield (
            o.id, o.patent_id, o.patent.application_number, status, o.royalty_kind,
            money(o.upfront_amount), o.has_free_period, o.term_end_date, o.terms_sha256,
            o.version, o.gazette_number, o.published_dt, o.withdrawal_gazette_number,
            o.withdrawn_dt, o.licence_count, o.created_dt,
        )  # fmt: skip


def _licences(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    statement = licence_services.visible_licences(actor, {}).order_by(None)
    for lic in session.scalars(statement.order_by(Licence.reference)):
        contract: Contract | None = getattr(lic, "contract", None)
        yield (
            lic.id, lic.reference, lic.status, lic.offer_id, lic.patent_id,
            lic.licensee_organisation_id, lic.licensee.name, lic.terms_sha256, lic.notice_dt,
            lic.effective_date, lic.end_date, lic.recordation_due_date, lic.recordation_number,
            lic.recordation_date, contract.signed_sha256 if contract else None,
            lic.terminated_dt, lic.created_dt,
        )  # fmt: skip


def _statements(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    statement = statements.visible_statements(actor, {}).order_by(None)
    for s in session.scalars(statement.order_by(Statement.number)):
        yield (
            s.id, s.number, s.licence_id, s.licensee_organisation_id, s.kind, s.period_start,
            s.period_end, s.instalment_number, fen(s.amount_due), fen(s.amount_paid),
            s.due_date, s.status, s.void_reason, s.created_dt,
        )  # fmt: skip


def _payments(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    statement = payments.visible_payments(actor, {}).order_by(None)
    for p in session.scalars(statement.order_by(Payment.created_dt, Payment.id)):
        yield (
            p.id, p.statement_id, p.licence_id, p.payer_organisation_id, fen(p.amount),
            fen(p.applied), fen(p.credit), p.paid_date, p.reference, p.source, p.bank_line_id,
            p.created_dt,
        )  # fmt: skip


def _settlements(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    # As the runs list shows them: the totals span organisations, so they are in no register
    # (each payee's part is in payee-lines).
    statement = settlement_views.visible_runs(actor).order_by(None)
    for r in session.scalars(statement.order_by(SettlementRun.number)):
        yield (
            r.id, r.number, r.period_start, r.period_end, r.status, r.reverses_id, r.fee_rate,
            fen(r.minimum_payout), r.created_dt,
        )  # fmt: skip


def _payee_lines(session: Session, actor: Actor) -> Iterable[Sequence[object]]:
    statement = (
        select(SettlementLine, SettlementRun.number, Payment.paid_date)
        .join(SettlementRun, SettlementRun.id == SettlementLine.run_id)
        .join(Payment, Payment.id == SettlementLine.payment_id)
        .where(settlement_views.visible_lines(actor))
        .order_by(SettlementRun.number, Payment.paid_date, SettlementLine.payment_id)
        .order_by(SettlementLine.role, SettlementLine.payee_type, SettlementLine.id)
    )
    for line, number, paid_date in session.execute(statement):
        yield (
            line.id, line.run_id, number, line.payment_id, paid_date, line.payee_type,
            line.payee_id, line.payee_name, line.owner_organisation_id, line.role,
            fen(line.amount),
        )  # fmt: skip


REGISTERS: Final[dict[str, Register]] = {
    register.name: register
    for register in (
        Register("patents", "application_number", (
            "id", "application_number", "patent_type", "title", "title_en", "filing_date",
            "grant_date", "expiry_date", "legal_status", "annual_fees_paid_through", "ipc",
            "owners", "version", "updated_dt",
        ), _patents),
        Register("offers", "id", (
            "id", "patent_id", "application_number", "status", "royalty_kind",
            "upfront_amount", "has_free_period", "term_end_date", "terms_sha256", "version",
            "gazette_number", "published_dt", "withdrawal_gazette_number", "withdrawn_dt",
            "licence_count", "created_dt",
        ), _offers),
        Register("licences", "reference", (
            "id", "reference", "status", "offer_id", "patent_id", "licensee_id",
            "licensee_name", "terms_sha256", "notice_dt", "effective_date", "end_date",
            "recordation_due_date", "recordation_number", "recordation_date",
            "contract_sha256", "terminated_dt", "created_dt",
        ), _licences),
        Register("statements", "number", (
            "id", "number", "licence_id", "licensee_id", "kind", "period_start", "period_end",
            "instalment_number", "amount_due", "amount_paid", "due_date", "status",
            "void_reason", "created_dt",
        ), _statements),
        Register("payments", "id", (
            "id", "statement_id", "licence_id", "payer_id", "amount", "applied", "credit",
            "paid_date", "reference", "source", "bank_line_id", "created_dt",
        ), _payments),
        Register("settlements", "number", (
            "id", "number", "period_start", "period_end", "status", "reverses_id", "fee_rate",
            "minimum_payout", "created_dt",
        ), _settlements),
        Register("payee-lines", "id", (
            "id", "run_id", "run_number", "payment_id", "paid_date", "payee_type", "payee_id",
            "payee_name", "owner_organisation_id", "role", "amount",
        ), _payee_lines),
    )
}  # fmt: skip


def register(name: str) -> Register:
    """The register called ``name``; :class:`NotFound` for any other name."""
    found = REGISTERS.get(name)
    if found is None:
        raise NotFound(f"register (one of {', '.join(REGISTERS)})")
    return found


def table(session: Session, actor: Actor, name: str) -> Table:
    """The register's rows as ``actor`` may see them (:class:`Forbidden` for a role its list
    endpoint refuses), each cell as text."""
    chosen = register(name)
    rows = [[cell(value) for value in values] for values in chosen.read(session, actor)]
    return Table(chosen, rows)
