"""What a settlement pays out now and what it carries forward; how a settled run is reversed.

Pure arithmetic on the payee lines of registry.clearing.splitting, in integer fen.

**Minimum payout with carry-forward.** Paying out a few fen costs more than it is worth, so a
payee is paid only once its balance reaches the minimum payout; smaller balances roll forward to
the next run (the Copyright Clearance Center's model: quarterly distributions, a minimum payment,
smaller balances rolled forward, reference/market.md C2 and §4). A payee's balance is what earlier
runs carried forward plus its new lines in this run, summed over every payment it is paid from:

* balance >= minimum (and > 0): the whole balance is paid and nothing is carried;
* 0 < balance < minimum: nothing is paid, the balance is carried;
* balance < 0 (a reversing run took back more than the payee has since earned): nothing is paid
  and the debt is carried, to be offset against later income. A payout is never negative:
  getting money back from a payee is a collection outside the settlement run.

Payee types in ``always_pay`` (by default the platform's fee, which is the clearing house's own
account) are settled in full every run, whatever the sign or size. Every payee conserves money:
``paid + carried_out == carried_in + new``, so the run as a whole does too.

A different minimum for one run (CCC lowers its $250 minimum to $50 once a year) is just another
``minimum_fen``. Which runs and payments were settled already (idempotency) is the settlement
service's business, recorded in the database.

**Reversal.** A settlement is corrected by a reversing run (issue 5 §5), never by editing it: the
lines it corrects are negated one for one (:func:`reverse_lines`), so they cancel payee by payee
whatever the shares are today, and the corrected split is then settled as new lines. Like every
correction in the ledger it is a new entry (reliability.md §0 rule 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from registry.clearing.splitting import PayeeLine, SplitError

__all__ = ["PayeeKey", "Payout", "plan_payouts", "reverse_lines", "totals_by_payee"]


class PayeeKey(NamedTuple):
    """Who is paid: ``("organisation" | "inventor" | "beneficiary" | "platform", id)``."""

    payee_type: str
    payee_id: str


@dataclass(frozen=True, slots=True)
class Payout:
    """One payee's outcome in a run, in fen: ``paid_fen + carried_out_fen == balance_fen``."""

    payee_type: str
    payee_id: str
    carried_in_fen: int
    new_fen: int
    paid_fen: int
    carried_out_fen: int

    @property
    def key(self) -> PayeeKey:
        return PayeeKey(self.payee_type, self.payee_id)

    @property
    def balance_fen(self) -> int:
        return self.carried_in_fen + self.new_fen


def totals_by_payee(lines: Iterable[PayeeLine]) -> dict[PayeeKey, int]:
    """Sum of the lines per payee (roles and payments merged), in first-seen order."""
    totals: dict[PayeeKey, int] = {}
    for line in lines:
        key = PayeeKey(line.payee_type, line.payee_id)
        totals[key] = totals.get(key, 0) + line.amount_fen
    return totals


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plan_payouts(
    lines: Iterable[PayeeLine],
    carried: Mapping[PayeeKey, int],
    *,
    minimum_fen: int,
    always_pay: Collection[str] = ("platform",),
) -> list[Payout]:
    """Decide, per payee, what this run pays and what it carries forward (rules above).

    ``lines`` are the run's new lines (reversals included), ``carried`` each payee's balance
    carried from earlier runs. Every payee with new lines or a non-zero carried balance gets one
    :class:`Payout`, sorted by (payee type, payee id) so a re-run lists them identically.
    Raises :class:`SplitError` for a negative or non-int minimum or a non-int amount.
    """
    if not _is_fen(minimum_fen) or minimum_fen < 0:
        raise SplitError(
            f"the minimum payout must be an int of fen >= 0, not {minimum_fen!r}",
            f"最低支付额应为非负整数（分），实际为 {minimum_fen!r}",
        )
    new = totals_by_payee(lines)
    keys = set(new) | {key for key, fen in carried.items() if fen != 0}
    payouts = []
    for key in sorted(keys):
        carried_in, fresh = carried.get(key, 0), new.get(key, 0)
        if not (_is_fen(carried_in) and _is_fen(fresh)):
            raise SplitError(f"{key}: amounts must be ints of fen", f"{key}：金额应为整数（分）")
        balance = carried_in + fresh
        if key.payee_type in always_pay:
            paid = balance
        else:
            # A zero minimum still pays only a positive balance; a debt is never paid out.
            paid = balance if balance > 0 and balance >= minimum_fen else 0
        payouts.append(Payout(*key, carried_in, fresh, paid, balance - paid))
    return payouts


def reverse_lines(lines: Iterable[PayeeLine]) -> list[PayeeLine]:
    """The reversing lines of ``lines``: the same payees, roles and details, amounts negated."""
    return [dataclasses.replace(line, amount_fen=-line.amount_fen) for line in lines]
