"""Helpers for CLI commands: one transaction per command, errors as readable messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from registry.core.errors import RegistryError


@contextmanager
def fail_on_registry_error() -> Iterator[None]:
    """Print a service's refusal with its field errors and exit 1, instead of a traceback."""
    try:
        yield
    except RegistryError as exc:
        lines = [exc.message]  # click prefixes "Error: "
        lines += [f"  {e.field}: {'; '.join(e.messages)}" for e in exc.errors]
        raise click.ClickException("\n".join(lines)) from None
