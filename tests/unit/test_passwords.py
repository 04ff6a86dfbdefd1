"""Password hashing as deployed: argon2id with OWASP/RFC 9106 parameters."""

from __future__ import annotations

import importlib

from argon2 import Type, extract_parameters

import registry.accounts.passwords as passwords_module


def test_production_hashes_are_argon2id_with_strong_parameters() -> None:
    # A fresh import gives the module's own hasher, not the cheap one the suite swaps in.
    fresh = importlib.reload(passwords_module)
    try:
        stored = fresh.hash_password("a long enough password")
        params = extract_parameters(stored)
        assert params.type is Type.ID
        assert params.memory_cost >= 19 * 1024  # OWASP minimum for argon2id: 19 MiB
        assert params.time_cost >= 2
        assert fresh.verify_password(stored, "a long enough password")
        assert not fresh.verify_password(stored, "a long enough passworD")
        assert not fresh.verify_password(None, "anything at all")
    finally:
        # Give the suite back its cheap hasher (the reload replaced the module's globals).
        from argon2 import PasswordHasher, profiles

        fresh._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
        fresh._DUMMY_HASH = fresh._hasher.hash("timing-equaliser-not-a-password")
