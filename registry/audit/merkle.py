"""The RFC 6962 Merkle tree over the audit log's leaves: tree heads, proofs, their verification.

Pure and standard-library only (``hashlib``), because the offline verifier an auditor runs
(:mod:`registry.audit.verify`) imports it too. It implements the published algorithms and
nothing of its own, so any other RFC 6962 implementation checks the same proofs:

- leaf hash ``SHA-256(0x00 ‖ data)`` and node hash ``SHA-256(0x01 ‖ left ‖ right)``, so a leaf
  can never pass for a node (RFC 6962 §2.1);
- the tree head MTH of the first *n* leaves, split at the largest power of two below *n*, with
  the empty tree's head SHA-256 of the empty string (§2.1);
- inclusion proofs PATH(m, D[n]) and consistency proofs PROOF(m, D[n]) exactly as §2.1.1 and
  §2.1.2 define them, listed bottom-up;
- their verification by the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

Every function takes *leaf hashes* (32-byte digests), not the data they hash: the log stores
each event's leaf hash, and reading those is all a tree head needs. Proof generation follows the
RFC's recursion over index ranges, never over copied lists (depth ≤ log2 n), and each subtree
head is computed level by level, so a head over 100,000 leaves takes about a tenth of a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import partial

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) (RFC 6962 §2.1)

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 ‖ d)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k, for n > 1 (the RFC's split point)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) over leaf hashes.

    Level by level, pairing neighbours and carrying an odd last node up unchanged: that builds
    the same tree as the RFC's split at the largest power of two (every left subtree is
    perfect, the right edge takes what is left), with no recursion and one pass per level.
    """
    if start == end:
        return EMPTY_ROOT
    level = list(leaves[start:end])  # references only: the digests are not copied
    sha, prefix = _sha256, NODE_PREFIX  # locals: this loop is the whole cost of a tree head
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        level = [
            sha(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if odd is not None:
            level.append(odd)
    return level[0]


def tree_root(leaves: Sequence[bytes], size: int | None = None) -> bytes:
    """The tree head of the first ``size`` leaves (all of them by default)."""
    size = _check_size(size, len(leaves))
    return subtree_root(leaves, 0, size)


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[size]) (RFC 6962 §2.1.1): the audit path of leaf ``index``, bottom-up.

    Raises :class:`ValueError` unless 0 <= index < size <= len(leaves).
    """
    return _inclusion(partial(subtree_root, leaves), len(leaves), index, size)


def consistency_proof(
    leaves: Sequence[bytes], first: int, second: int | None = None
) -> list[bytes]:
    """PROOF(first, D[second]) (RFC 6962 §2.1.2): the tree of ``second`` extends that of ``first``.

    Empty when ``first`` is 0 or equals ``second`` (nothing to prove). Raises
    :class:`ValueError` unless 0 <= first <= second <= len(leaves).
    """
    return _consistency(partial(subtree_root, leaves), len(leaves), first, second)


class MerkleTree:
    """Leaf hashes whose subtree heads are kept once computed, for many proofs over one tree.

    Every proof for a tree of *n* leaves costs O(n) hashing through the functions above; here
    all *n* proofs cost O(n log n) together. The heads kept grow to 2n digests (some 150 MB for
    a million leaves), so this is for bulk work — tests, offline checks — not for a request.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self._heads: dict[tuple[int, int], bytes] = {}

    def head(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), by the RFC's split, each subtree computed once."""
        if end - start == 1:
            return self.leaves[start]
        if start == end:
            return EMPTY_ROOT
        found = self._heads.get((start, end))
        if found is None:
            k = _largest_power_of_two_below(end - start)
            found = node_hash(self.head(start, start + k), self.head(start + k, end))
            self._heads[(start, end)] = found
        return found

    def root(self, size: int | None = None) -> bytes:
        return self.head(0, _check_size(size, len(self.leaves)))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return _inclusion(self.head, len(self.leaves), index, size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return _consistency(self.head, len(self.leaves), first, second)


Head = Callable[[int, int], bytes]  # MTH(D[start:end])


def _inclusion(head: Head, available: int, index: int, size: int | None) -> list[bytes]:
    size = _check_size(size, available)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")
    proof: list[bytes] = []
    _path(head, index, 0, size, proof)
    return proof


def _path(head: Head, m: int, lo: int, hi: int, out: list[bytes]) -> None:
    # PATH(m, D[lo:hi]); m is absolute. Appends in the RFC's order: deeper subtrees first.
    if hi - lo == 1:
        return
    k = _largest_power_of_two_below(hi - lo)
    if m < lo + k:
        _path(head, m, lo, lo + k, out)
        out.append(head(lo + k, hi))
    else:
        _path(head, m, lo + k, hi, out)
        out.append(head(lo, lo + k))


def _consistency(head: Head, available: int, first: int, second: int | None) -> list[bytes]:
    second = _check_size(second, available)
    if not 0 <= first <= second:
        raise ValueError(f"first size {first} is not between 0 and the second size {second}")
    proof: list[bytes] = []
    if 0 < first < second:
        _subproof(head, first, 0, second, True, proof)
    return proof


def _subproof(head: Head, m: int, lo: int, hi: int, whole: bool, out: list[bytes]) -> None:
    # SUBPROOF(m, D[lo:hi], b); m counts from lo. ``whole`` is the RFC's b: the subtree
    # D[lo:lo+m] is one the verifier already knows the head of.
    n = hi - lo
    if m == n:
        if not whole:
            out.append(head(lo, hi))
        return
    k = _largest_power_of_two_below(n)
    if m <= k:
        _subproof(head, m, lo, lo + k, whole, out)
        out.append(head(lo + k, hi))
    else:
        _subproof(head, m - k, lo + k, hi, False, out)
        out.append(head(lo, lo + k))


def _check_size(size: int | None, available: int) -> int:
    """``size`` (``available`` when absent), refused unless 0 <= size <= available."""
    if size is None:
        return available
    if not 0 <= size <= available:
        raise ValueError(f"tree size {size} is not between 0 and {available}")
    return size


def proof_length_bound(size: int) -> int:
    """⌈log2 size⌉: the longest inclusion proof in a tree of ``size`` leaves.

    A consistency proof into that tree may hold one hash more: the head of the first tree's
    last perfect subtree, then that subtree's own path (e.g. from 5 to 633 leaves: 11 hashes).
    """
    return (size - 1).bit_length() if size > 1 else 0


# Verification (RFC 9162) -------------------------------------------------------------------


def _well_formed(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root the audit path leads to (RFC 9162 §2.1.3.2 steps 1–5), or ``None`` when the
    path cannot belong to leaf ``index`` of a tree of ``size`` (wrong length or position)."""
    if not 0 <= index < size or not _well_formed(leaf, *proof):
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return None  # the path is longer than the tree is deep
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:  # a right edge: climb to where it is a right child
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``."""
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    return computed is not None and _well_formed(root) and computed == root


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """True when ``proof`` shows the tree ``(first, first_root)`` is a prefix of
    ``(second, second_root)`` (RFC 9162 §2.1.4.2).

    Two sizes that are equal need an empty proof and equal roots; a first tree of size 0 is the
    empty tree (its root must be SHA-256 of "") and needs an empty proof; a second tree smaller
    than the first ("time travel") never verifies.
    """
    if not _well_formed(first_root, second_root, *proof) or not 0 <= first <= second:
        return False
    if first == 0:  # the empty tree has one root, and every tree extends it
        return not proof and first_root == EMPTY_ROOT and (second > 0 or second_root == EMPTY_ROOT)
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False  # step 1
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)  # step 2: a power of two is a node the proof leaves out
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:  # a right edge: climb to where it is a right child
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0  # step 7
