"""Contracts: each licence's standard open-licence contract, rendered, signed and stored at
take-up; downloaded by its parties and auditors and verifiable by anyone (DESIGN.md §2)."""

from __future__ import annotations

from flask import Flask

from registry.core.api import register


def init_app(app: Flask) -> None:
    from registry.config import Settings
    from registry.contracts import api, cli, services
    from registry.contracts.issuing import EXTENSION, ContractOffice
    from registry.core.blobs import BlobStore
    from registry.licences.signals import licence_taken_up

    settings: Settings = app.config["REGISTRY_SETTINGS"]
    app.extensions[EXTENSION] = ContractOffice(
        store=BlobStore(settings.blob_root),
        instance_path=settings.instance_path,
        p12_path=settings.signing_p12,
        p12_passphrase=settings.signing_p12_passphrase,
        timestamp_url=settings.timestamp_url,
        mode=settings.contract_issue,
    )
    register(app, api.blp)
    cli.init_app(app)
    # Signals are process-wide; the receiver reads the current app's office, and connecting
    # the same function again (a second app in one process) is a no-op.
    licence_taken_up.connect(services.on_licence_taken_up, weak=False)
