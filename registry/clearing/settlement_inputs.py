"""Who shares in a payment on its date: co-owners, income beneficiaries, reward policies and
inventors as recorded then (issue 5 §5; DESIGN.md §2 Clearing; reference/law.md A5, §5).

Ownership, income rights and inventors are versioned rows (registry.patents.models): a change
supersedes the current rows and adds new ones, so the shares of any past day can be read back.
This module turns those rows into the inputs of registry.clearing.splitting; it decides:

**The day's record.** A payment is split by the rows in force at the end of its paid date,
Beijing time (the last state recorded that day). A payment dated before the patent's first
record (a back-dated receipt) uses that first record, the earliest evidence of who held it.
Ownership and inventors are looked up separately, each by the same rule.

**Income beneficiaries** share on the days from ``valid_from`` to ``valid_to``. An income right
that has ended (or not begun) returns to the title holders: its share is added to the
co-owners' income shares in proportion to them (largest remainder; by title share when every
co-owner's income share is 0), so the holders still total 100 % (Patent Law Art. 14: co-owners
share the royalty).

**Inventors** (their contribution is ``Inventor.share``). A co-owner whose part is subject to a
reward policy — its recorded one, or for a university or institute without one the 50 % of STL
Art. 45 — rewards from its inventors' pool:

1. the patent's inventors recorded with that organisation (``Inventor.organisation_id``);
2. failing those, if it holds the patent as a service invention (Patent Law Art. 6) or under the
   researcher-ownership pilot, the inventors recorded without an organisation: they are taken
   to be its staff;
3. failing those, nobody. If its policy gives inventors a share, the payment is not settled but
   held (:class:`Unsplittable`, reported with the run) until the inventors' organisations are
   recorded: the clearing house never guesses whose reward it is.

Inventors employed by an organisation that is not a co-owner are rewarded by their employer,
outside the clearing house; an owner without a policy (an enterprise, Patent Law Art. 15) keeps
its whole part. Policies name deductible cost kinds, but no cost amounts are recorded per
payment, so nothing is deducted (the split's deductions stay empty).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, RewardPolicy
from registry.clearing.splitting import (
    REWARDING_KINDS,
    STATUTORY_INVENTOR_SHARE,
    WHOLE,
    BeneficiaryShare,
    InventorShare,
    OwnerShare,
    PolicyTerms,
)
from registry.core.clock import BEIJING
from registry.core.shares import allocate, percent_to_hundredths
from registry.patents.models import IncomeBeneficiary, Inventor, OwnershipBasis, PatentOwner

#: Bases on which inventors recorded without an organisation count as the owner's staff.
STAFF_BASES = frozenset(
    {OwnershipBasis.SERVICE_INVENTION, OwnershipBasis.RESEARCHER_OWNERSHIP_PILOT}
)
CHUNK = 500  # ids per IN (...) list

V = TypeVar("V", PatentOwner, IncomeBeneficiary, Inventor)


class Unsplittable(Exception):
    """The records do not say how to split a payment; ``str()`` says why (English)."""


@dataclass(frozen=True)
class Holders:
    """The split's inputs for one patent on one day."""

    owners: tuple[OwnerShare, ...]
    beneficiaries: tuple[BeneficiaryShare, ...]


def end_of_day(day: date) -> datetime:
    """The last instant of ``day`` in Beijing time."""
    return datetime.combine(day + timedelta(days=1), time.min, BEIJING) - timedelta(microseconds=1)


def in_force(rows: Sequence[V], instant: datetime) -> list[V]:
    """The rows in force at ``instant``; if none yet, those of the first recorded version."""
    current = [r for r in rows if r.effective_from_dt <= instant and not _ended(r, instant)]
    if current or not rows:
        return sorted(current, key=lambda r: r.position)
    first = min(r.effective_from_dt for r in rows)
    return sorted((r for r in rows if r.effective_from_dt == first), key=lambda r: r.position)


def _ended(row: PatentOwner | IncomeBeneficiary | Inventor, instant: datetime) -> bool:
    return row.superseded_dt is not None and row.superseded_dt <= instant


def _chunks(ids: Iterable[uuid.UUID]) -> Iterable[list[uuid.UUID]]:
    items = sorted(set(ids), key=str)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _by_patent(
    session: Session, model: type[V], chunks: list[list[uuid.UUID]]
) -> dict[uuid.UUID, list[V]]:
    found: dict[uuid.UUID, list[V]] = {}
    for chunk in chunks:
        for row in session.scalars(select(model).where(model.patent_id.in_(chunk))):
            found.setdefault(row.patent_id, []).append(row)
    return found


class PatentRecords:
    """Every recorded version of some patents' ownership and inventors, with the organisations
    and reward policies they name, read once in a few queries and cached per (patent, day)."""

    def __init__(self, session: Session, patent_ids: Iterable[uuid.UUID]) -> None:
        ids = list(_chunks(patent_ids))
        self.owners = _by_patent(session, PatentOwner, ids)
        self.beneficiaries = _by_patent(session, IncomeBeneficiary, ids)
        self.inventors = _by_patent(session, Inventor, ids)
        org_ids = {o.organisation_id for rows in self.owners.values() for o in rows}
        self.organisations: dict[uuid.UUID, Organisation] = {}
        self.policies: dict[uuid.UUID, PolicyTerms] = {}
        for chunk in _chunks(org_ids):
            for org in session.scalars(select(Organisation).where(Organisation.id.in_(chunk))):
                self.organisations[org.id] = org
            for policy in session.scalars(
                select(RewardPolicy).where(RewardPolicy.organisation_id.in_(chunk))
            ):
                self.policies[policy.organisation_id] = PolicyTerms.from_policy(policy)
        self._cache: dict[tuple[uuid.UUID, date], Holders] = {}

    def holders(self, patent_id: uuid.UUID, day: date) -> Holders:
        """The co-owners and beneficiaries sharing a payment on ``patent_id`` paid on ``day``;
        :class:`Unsplittable` when the records cannot say."""
        key = (patent_id, day)
        if key not in self._cache:
            self._cache[key] = self._holders(patent_id, day)
        return self._cache[key]

    def _holders(self, patent_id: uuid.UUID, day: date) -> Holders:
        instant = end_of_day(day)
        owners = in_force(self.owners.get(patent_id, []), instant)
        if not owners:
            raise Unsplittable(f"patent {patent_id} has no recorded owners")
        # The beneficiaries recorded with the owners chosen (the first version's, if those).
        at = max(instant, max(o.effective_from_dt for o in owners))
        beneficiaries = [
            b
            for b in self.beneficiaries.get(patent_id, [])
            if b.effective_from_dt <= at
            and not _ended(b, at)
            and b.valid_from <= day
            and (b.valid_to is None or day <= b.valid_to)
        ]
        beneficiaries.sort(key=lambda b: b.position)
        inventors = in_force(self.inventors.get(patent_id, []), instant)
        incomes = _owner_incomes(owners, beneficiaries)
        shares = tuple(
            self._owner_share(owner, income, inventors)
            for owner, income in zip(owners, incomes, strict=True)
        )
        return Holders(shares, tuple(_beneficiary_share(b) for b in beneficiaries))

    def _owner_share(
        self, owner: PatentOwner, income: int, inventors: Sequence[Inventor]
    ) -> OwnerShare:
        org = self.organisations[owner.organisation_id]
        policy = self.policies.get(org.id)
        rewarding = policy is not None or org.kind.value in REWARDING_KINDS
        chosen: list[Inventor] = []
        if rewarding:
            chosen = [i for i in inventors if i.organisation_id == org.id]
            if not chosen and owner.basis in STAFF_BASES:
                chosen = [i for i in inventors if i.organisation_id is None]
            share = (
                policy.inventor_share_hundredths if policy is not None else STATUTORY_INVENTOR_SHARE
            )
            if not chosen and share > 0:
                raise Unsplittable(
                    f"{org.name}: its reward policy gives inventors a share, but no inventor "
                    f"of the patent is recorded with it; record the inventors' organisation"
                )
        return OwnerShare(
            organisation_id=str(org.id),
            name=org.name,
            income_share_hundredths=income,
            kind=org.kind.value,
            policy=policy,
            inventors=tuple(
                InventorShare(str(i.id), i.name, percent_to_hundredths(i.share)) for i in chosen
            ),
        )


def _owner_incomes(owners: Sequence[PatentOwner], valid: Sequence[IncomeBeneficiary]) -> list[int]:
    """The owners' income shares with the shares of beneficiaries not valid today returned to
    them (module docstring)."""
    incomes = [percent_to_hundredths(o.income_share) for o in owners]
    lapsed = WHOLE - sum(incomes) - sum(percent_to_hundredths(b.income_share) for b in valid)
    if lapsed < 0:
        raise Unsplittable("income shares of owners and beneficiaries exceed 100 %")
    if lapsed == 0:
        return incomes
    weights = incomes if any(incomes) else [percent_to_hundredths(o.title_share) for o in owners]
    return [
        income + extra for income, extra in zip(incomes, allocate(lapsed, weights), strict=True)
    ]


def _beneficiary_share(row: IncomeBeneficiary) -> BeneficiaryShare:
    return BeneficiaryShare(
        beneficiary_id=str(row.id),
        name=row.name,
        income_share_hundredths=percent_to_hundredths(row.income_share),
        organisation_id=str(row.organisation_id) if row.organisation_id else None,
    )
