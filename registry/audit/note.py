"""Checkpoints as C2SP signed notes: the text format outsiders keep, signed with Ed25519.

Standard library and ``cryptography`` only: the offline verifier imports this module.

A checkpoint (c2sp.org/tlog-checkpoint) is the note text::

    <origin>
    <tree size in decimal>
    <base64 of the RFC 6962 root hash>

and a signed note (c2sp.org/signed-note) is that text, a blank line, and signature lines
``— <key name> <base64(key hash ‖ signature)>``. For Ed25519 the key hash is the first four
bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key) and the signature covers the text bytes,
final newline included. Lines by other keys (a witness's cosignature) are kept and ignored.
The verifier key string ``<name>+<hex key hash>+<base64(0x01 ‖ public key)>`` is the form
other tools (Go's ``golang.org/x/mod/sumdb/note``) accept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
KEY_HASH_SIZE = 4
HASH_SIZE = 32
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class NoteError(ValueError):
    """A note or key that is malformed, or a signature that does not verify; says which."""


def check_key_name(name: str) -> str:
    """Key names (and so origins) are non-empty, without spaces or ``+`` (signed-note spec)."""
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"{name!r} is not a key name: non-empty, no spaces, no '+'")
    return name


def key_hash(name: str, public_key: bytes) -> bytes:
    data = name.encode("utf-8") + b"\n" + bytes([ALGORITHM_ED25519]) + public_key
    return hashlib.sha256(data).digest()[:KEY_HASH_SIZE]


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALGORITHM_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    def verifies(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


def parse_vkey(vkey: str) -> Verifier:
    """Read ``<name>+<hex key hash>+<base64(0x01 ‖ key)>``, checking the hash matches."""
    parts = vkey.strip().split("+", 2)  # the base64 key itself may hold '+'
    if len(parts) != 3:
        raise NoteError("a verifier key reads <name>+<key hash>+<key>")
    name, hash_hex, encoded = parts
    check_key_name(name)
    try:
        material = base64.b64decode(encoded, validate=True)
        claimed = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"the verifier key cannot be decoded: {exc}") from None
    if len(material) != 33 or material[0] != ALGORITHM_ED25519:
        raise NoteError("the verifier key is not an Ed25519 key")
    verifier = Verifier(name, material[1:])
    if claimed != verifier.key_hash:
        raise NoteError("the verifier key's hash does not match its name and key")
    return verifier


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes

    def text(self) -> str:
        root = base64.b64encode(self.root_hash).decode()
        return f"{check_key_name(self.origin)}\n{self.size}\n{root}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note's text: origin, size (decimal, no leading zero), 32-byte root.

    Extension lines after the root are allowed by the spec; this log writes none and ignores
    any it is given.
    """
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise NoteError("a checkpoint is at least three non-empty lines, each ending in a newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not _DECIMAL.fullmatch(size):
        raise NoteError(f"the tree size {size!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise NoteError(f"the root hash {root!r} is not base64") from None
    if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root:
        raise NoteError("the root hash is not 32 bytes in standard base64")
    return Checkpoint(check_key_name(origin), int(size), root_hash)


def sign(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note: ``text``, a blank line and one signature line by ``name``."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("note text ends with a newline and holds no blank line")
    public = raw_public_key(key.public_key())
    signature = key.sign(text.encode("utf-8"))
    encoded = base64.b64encode(key_hash(name, public) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{check_key_name(name)} {encoded}\n"


@dataclass(frozen=True)
class SignatureLine:
    name: str
    key_hash: bytes
    signature: bytes

    @property
    def encoded(self) -> str:
        """As the line shows it: base64(key hash ‖ signature)."""
        return base64.b64encode(self.key_hash + self.signature).decode()


def split(note: str) -> tuple[str, list[SignatureLine]]:
    """The text of a signed note and its signature lines (not yet verified)."""
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("the note has no blank line before its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    if not block.endswith("\n"):
        raise NoteError("the last signature line does not end with a newline")
    lines: list[SignatureLine] = []
    for number, line in enumerate(block[:-1].split("\n"), start=1):
        if not line.startswith(SIGNATURE_PREFIX) or line.count(" ") != 2:
            raise NoteError(f"signature line {number} is not '— <key name> <signature>'")
        name, encoded = line[len(SIGNATURE_PREFIX) :].split(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError(f"signature line {number} is not base64") from None
        if len(blob) <= KEY_HASH_SIZE:
            raise NoteError(f"signature line {number} is too short")
        lines.append(SignatureLine(name, blob[:KEY_HASH_SIZE], blob[KEY_HASH_SIZE:]))
    return text, lines


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text once ``verifier``'s signature on it checks out.

    Raises :class:`NoteError` when the note is malformed, carries no signature by this key
    (same name and key hash), or when that signature does not verify — the text or the
    signature was changed, or it was signed by a different key under the same name.
    """
    text, lines = split(note)
    ours = [line for line in lines if line.name == verifier.name]
    if not ours:
        raise NoteError(f"the note carries no signature by {verifier.name}")
    matching = [line for line in ours if line.key_hash == verifier.key_hash]
    if not matching:
        raise NoteError(f"the signature by {verifier.name} was made with another key")
    if not all(verifier.verifies(text.encode("utf-8"), line.signature) for line in matching):
        raise NoteError(f"the signature by {verifier.name} does not verify: the note was changed")
    return text


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint in a signed note, verified; its origin must be the key's name."""
    checkpoint = parse_checkpoint(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(
            f"the checkpoint's origin {checkpoint.origin} is not the key's name {verifier.name}"
        )
    return checkpoint
