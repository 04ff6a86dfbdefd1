"""Signals the patents feature sends so features above it can veto or react (DESIGN.md §3)."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent before an exclusive or sole licence is recorded, with ``session`` and ``kind``.
#: A receiver returns a reason string to refuse it (e.g. an open licence is published,
#: Patent Law Art. 51(3)), or ``None``.
encumbrance_requested = _signals.signal("patents.encumbrance-requested")
