"""Clearing-house state for settlement and ledger tests, made through the services.

A licence on a patent whose owners, income beneficiaries, inventors and reward policies are set
by the patents and accounts services; statements by registry.clearing.statements; payments by
registry.clearing.payments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts import services as account_services
from registry.accounts.models import Organisation, User
from registry.audit.models import AuditEvent
from registry.clearing import ledger
from registry.clearing.models import (
    JournalEntry,
    JournalTransaction,
    Payment,
    SettledPayment,
    SettlementLine,
    SettlementRun,
    Statement,
    StatementKind,
)
from registry.clearing.payments import record_payment
from registry.clearing.statements import issue_statement
from registry.core import clock
from registry.core.idempotency import IdempotencyRecord
from registry.licences.models import Licence
from registry.patents import services as patent_services
from registry.patents.models import Patent
from registry.patents.schemas import InventorsSchema, OwnershipSchema
from tests.factories import Factory
from tests.factories import licences as lf
from tests.factories.offers import fast_admin


@dataclass
class Licensed:
    """A licence on ``patent``, first owned by ``owner`` alone (its TTO ``tto``)."""

    patent: Patent
    licence: Licence
    owner: Organisation
    tto: User
    licensee: Organisation
    licensee_user: User
    admin: User


def licensed_patent(factory: Factory, owner_kind: str = "university") -> Licensed:
    """A patent of a new ``owner_kind`` organisation, published as a free open licence and
    taken up by a new SME (its licence has no statements of its own)."""
    admin = fast_admin(factory)
    owner = factory.organisation(owner_kind)
    tto = factory.user(owner, "tto")
    offer = lf.published_offer(factory, tto)
    licensee, licensee_user, _ = lf.enterprise_licensee(factory)
    licence = lf.take_up(factory, licensee_user, offer)
    patent = factory.session.get_one(Patent, offer.patent_id)
    return Licensed(patent, licence, owner, tto, licensee, licensee_user, admin)


def set_owners(
    factory: Factory,
    admin: User,
    patent: Patent,
    owners: list[dict[str, Any]],
    beneficiaries: list[dict[str, Any]] | None = None,
) -> None:
    """Replace the owners (and beneficiaries) as an admin would: ``{"organisation_id",
    "title_share", "income_share"}`` entries, shares as strings."""
    data = OwnershipSchema().load(
        {
            "owners": [{**o, "organisation_id": str(o["organisation_id"])} for o in owners],
            "beneficiaries": [
                {
                    **b,
                    **(
                        {"organisation_id": str(b["organisation_id"])}
                        if "organisation_id" in b
                        else {}
                    ),
                }
                for b in beneficiaries or []
            ],
        }
    )
    patent_services.set_ownership(
        factory.session, actor=factory.actor(admin), patent_id=patent.id, data=data
    )


def set_inventors(
    factory: Factory, admin: User, patent: Patent, inventors: list[tuple[str, Any, str]]
) -> None:
    """Replace the inventors: ``(name, organisation or None, contribution share)``."""
    data = InventorsSchema().load(
        {
            "inventors": [
                {"name": name, "organisation_id": str(org.id) if org else None, "share": share}
                for name, org, share in inventors
            ]
        }
    )
    patent_services.set_inventors(
        factory.session,
        actor=factory.actor(admin),
        patent_id=patent.id,
        inventors=data["inventors"],
    )


def reward_policy(
    factory: Factory, admin: User, organisation: Organisation, share: str, **extra: Any
) -> None:
    from registry.accounts.schemas import RewardPolicySchema

    data = RewardPolicySchema().load({"inventor_share": share, **extra})
    account_services.set_reward_policy(
        factory.session, actor=factory.actor(admin), organisation_id=organisation.id, data=data
    )


def statement(
    factory: Factory, licence: Licence, amount: int, *, due_date: date | None = None
) -> Statement:
    """A lump-sum statement of ``amount`` fen on ``licence``, due in a year unless given,
    issued by registry.clearing.statements (ledger flow "statement issued")."""
    return issue_statement(
        factory.session,
        licence=licence,
        kind=StatementKind.LUMP_SUM,
        amount=amount,
        due_date=due_date or clock.today() + timedelta(days=365),
        actor=None,
    )


def pay(
    factory: Factory,
    admin: User,
    statement: Statement,
    amount: int,
    *,
    paid_date: date | None = None,
    reference: str | None = None,
) -> Payment:
    """A payment recorded by the clearing house (registry.clearing.payments)."""
    return record_payment(
        factory.session,
        actor=factory.actor(admin),
        statement_id=statement.id,
        amount=amount,
        paid_date=paid_date or clock.today(),
        reference=reference or f"BANK-{uuid.uuid4().hex[:10]}",
    )


def counts(session: Session) -> dict[str, int]:
    """Rows of everything a settlement or reversal writes, and the settled payments' state."""
    session.flush()
    session.expire_all()

    def count(model: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return {
        "runs": count(SettlementRun),
        "reversed_runs": count(SettlementRun, SettlementRun.status == "reversed"),
        "lines": count(SettlementLine),
        "settled": count(SettledPayment),
        "live_settled": count(SettledPayment, SettledPayment.reversed_dt.is_(None)),
        "transactions": count(JournalTransaction),
        "entries": count(JournalEntry),
        "audit_events": count(AuditEvent),
        "idempotency_records": count(IdempotencyRecord),
    }


def balance(session: Session, code: str) -> int:
    return ledger.balance(session, code)
