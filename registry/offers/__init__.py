"""Offers: open-licence declarations, their eligibility and consents, the public registry and
the gazette."""

from __future__ import annotations

from flask import Flask

from registry.core.api import register


def init_app(app: Flask) -> None:
    from registry.offers import api, cli, services
    from registry.patents.signals import encumbrance_requested

    register(app, api.blp)
    cli.init_app(app)
    # PL Art. 51(3): no exclusive or sole licence while an open licence is published.
    encumbrance_requested.connect(services.refuse_exclusive_while_published, weak=False)
