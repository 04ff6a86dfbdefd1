"""Signals the licences feature sends so features above it can act (DESIGN.md §3)."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent at the end of a take-up, inside its transaction, with ``session`` and ``actor``; the
#: sender is the new :class:`~registry.licences.models.Licence`. A receiver that raises undoes
#: the take-up (the contracts feature issues the licence's contract here, DESIGN.md §2).
licence_taken_up = _signals.signal("licences.taken-up")
