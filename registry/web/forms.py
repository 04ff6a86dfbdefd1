"""Reading a posted form with the API's own schema, and its errors shaped for the page.

A page validates what it receives with the same marshmallow schema as the API endpoint for
the same act, so a rule is written once. The errors come back as ``{field: [messages]}`` in
the page's language, shown next to each field (and listed at the top, each linking to its
field; the first field in error gets the focus).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma
from flask import request

from registry.core.errors import RegistryError
from registry.core.http import flatten_messages, unstorable_fields
from registry.web.labels import translate

UNSTORABLE = "text may not contain NUL characters or unpaired surrogates"


@dataclass
class Form:
    """What was typed (shown again on error) and what is wrong with it."""

    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    problem: str | None = None  # a message about the whole form

    @property
    def ok(self) -> bool:
        return not self.errors and self.problem is None

    @property
    def first_error(self) -> str | None:
        return next(iter(self.errors), None)

    def add(self, name: str, *messages: str) -> None:
        self.errors.setdefault(name, []).extend(translate(m) for m in messages)

    def absorb(self, error: RegistryError, fields: Iterable[str]) -> None:
        """A service's refusal: messages on known fields go next to them, the rest on top."""
        known = set(fields)
        placed = False
        for item in error.errors:
            name = item.field.split(".")[0]
            if name in known:
                self.add(name, *item.messages)
                placed = True
        if not placed or len(error.errors) == 0:
            self.problem = translate(error.message)


def posted(names: Iterable[str]) -> Form:
    """The named fields of the posted form, stripped ("" when absent)."""
    return Form({name: request.form.get(name, "").strip() for name in names})


def load(form: Form, schema: ma.Schema) -> dict[str, Any] | None:
    """``form`` through ``schema``: the loaded data, or ``None`` with ``form.errors`` set.

    A field left blank is not sent: a required one is reported missing, an optional one is
    simply absent (a blank e-mail address is "none", not an invalid one)."""
    data = {name: value for name, value in form.values.items() if value != ""}
    for name in dict.fromkeys(unstorable_fields(data)):
        form.add(name, UNSTORABLE)
    if form.errors:
        return None
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ma.ValidationError as error:
        for item in flatten_messages(error.messages):
            form.add(item.field.split(".")[0], *item.messages)
        return None
    return loaded
