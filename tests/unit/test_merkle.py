"""The RFC 6962 tree and the RFC 9162 verifiers (reliability.md §8 T14).

Known answers are transparency-dev/merkle's ``proof/verify_test.go`` vectors (the CT test data);
proofs for every leaf and every size pair of small trees are compared with a literal transcription
of RFC 6962 §2.1's recursive definitions, written here over list slices; every good proof is
then corrupted in each way that file tries, and no corrupted proof may verify.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator

import pytest

from registry.audit import merkle

H = bytes.fromhex
SOME_HASH = H("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY = H("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
DATA = [
    H(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [merkle.leaf_hash(d) for d in DATA]
ROOTS = [  # the roots of the first 1 … 8 leaves
    H(x)
    for x in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (first, second, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


# RFC 6962 §2.1, transcribed literally (slices and recursion; fine for small trees) ----------


def rfc_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:])).digest()


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [rfc_mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


def random_data(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]


# Known answers ------------------------------------------------------------------------------


def test_the_ct_test_vectors_give_the_published_roots() -> None:
    assert merkle.tree_root([]) == EMPTY == merkle.EMPTY_ROOT
    for size, root in enumerate(ROOTS, start=1):
        assert merkle.tree_root(LEAVES, size) == root, size
        assert merkle.MerkleTree(LEAVES).root(size) == root, size
    assert merkle.tree_root(LEAVES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(LEAVES[0], LEAVES[1]) == ROOTS[1]
    # A node's two children, hashed as if they were a leaf's data, give a different hash.
    assert merkle.leaf_hash(LEAVES[0] + LEAVES[1]) != ROOTS[1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    expected = [H(p) for p in proof]
    assert merkle.inclusion_proof(LEAVES, index, size) == expected
    assert merkle.verify_inclusion(LEAVES[index], index, size, expected, ROOTS[size - 1])
    assert (
        merkle.root_from_inclusion_proof(LEAVES[index], index, size, expected) == (ROOTS[size - 1])
    )
    assert_no_corrupted_inclusion_verifies(LEAVES[index], index, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_known_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    expected = [H(p) for p in proof]
    assert merkle.consistency_proof(LEAVES, first, second) == expected
    roots = ROOTS[first - 1], ROOTS[second - 1]
    assert merkle.verify_consistency(first, second, expected, *roots)
    assert_no_corrupted_consistency_verifies(first, second, expected, *roots)


def test_a_one_leaf_tree_has_an_empty_proof_and_its_leaf_as_root() -> None:
    leaf = merkle.leaf_hash(b"data")
    assert merkle.tree_root([leaf]) == leaf
    assert merkle.inclusion_proof([leaf], 0) == []
    assert merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    assert not merkle.verify_inclusion(leaf, 0, 1, [], b"")
    assert not merkle.verify_inclusion(b"", 0, 1, [], leaf)
    assert not merkle.verify_inclusion(b"", 0, 1, [], b"")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1)])
def test_no_leaf_outside_the_tree_verifies(index: int, size: int) -> None:
    for leaf, root in ((SOME_HASH, b""), (b"", EMPTY), (SOME_HASH, EMPTY), (EMPTY, EMPTY)):
        assert not merkle.verify_inclusion(leaf, index, size, [], root)


def test_trivial_and_degenerate_consistency() -> None:
    r1, r2 = ROOTS[0], ROOTS[1]
    assert merkle.verify_consistency(0, 0, [], EMPTY, EMPTY)
    assert merkle.verify_consistency(1, 1, [], r1, r1)
    assert merkle.verify_consistency(0, 2, [], EMPTY, r2)  # anything extends the empty tree
    assert merkle.consistency_proof(LEAVES, 0, 5) == []
    assert merkle.consistency_proof(LEAVES, 5, 5) == []
    refused = [
        (0, 0, [], r1, r1),  # the empty tree has one root
        (0, 2, [], r1, r2),  # … even when the second tree extends it
        (1, 1, [], r1, r2),  # two roots for one size: a split view
        (1, 1, [], EMPTY, r1),
        (1, 0, [], r1, EMPTY),  # time travel
        (2, 1, [], r2, r1),
        (1, 2, [], r1, r2),  # a real proof is needed
        (0, 0, [EMPTY], EMPTY, EMPTY),  # a proof where none is due
        (0, 1, [EMPTY], EMPTY, r1),
        (1, 1, [EMPTY], r1, r1),
        (-1, 1, [], EMPTY, r1),
    ]
    for case in refused:
        assert not merkle.verify_consistency(*case), case


def test_sizes_and_indices_outside_the_leaves_are_refused() -> None:
    for call in (
        lambda: merkle.tree_root(LEAVES, 9),
        lambda: merkle.tree_root(LEAVES, -1),
        lambda: merkle.inclusion_proof(LEAVES, 8, 8),
        lambda: merkle.inclusion_proof(LEAVES, -1, 8),
        lambda: merkle.inclusion_proof(LEAVES, 0, 0),
        lambda: merkle.consistency_proof(LEAVES, 5, 4),
        lambda: merkle.consistency_proof(LEAVES, 1, 9),
    ):
        with pytest.raises(ValueError, match=r"not between|not in a tree"):
            call()


# Against the RFC's own definitions ----------------------------------------------------------


def test_every_proof_of_small_trees_is_the_rfcs() -> None:
    rng = random.Random(6962)  # noqa: S311 - seeded test data, no secrets
    data = random_data(rng, 40)
    leaves = [merkle.leaf_hash(d) for d in data]
    for n in range(len(data) + 1):
        assert merkle.tree_root(leaves, n) == rfc_mth(data[:n])
        for m in range(n):
            assert merkle.inclusion_proof(leaves, m, n) == rfc_path(m, data[:n]), (m, n)
        for m in range(1, n):
            assert merkle.consistency_proof(leaves, m, n) == rfc_subproof(m, data[:n], True)


# Random trees: no false reject, no false accept, short proofs -------------------------------


def sizes(rng: random.Random) -> list[int]:
    """Every size to 64 (all the small shapes), powers of two and their neighbours, and random
    sizes up to 2000."""
    edges = {p + d for p in (64, 128, 256, 512, 1024) for d in (-1, 0, 1)}
    return sorted({*range(1, 65), *edges, 2000, *(rng.randint(65, 2000) for _ in range(30))})


def test_random_trees_every_inclusion_proof_verifies_and_is_short() -> None:
    rng = random.Random(9162)  # noqa: S311 - seeded test data, no secrets
    data = random_data(rng, 2000)
    leaves = [merkle.leaf_hash(d) for d in data]
    checked = 0
    for n in sizes(rng):
        tree = merkle.MerkleTree(leaves[:n])
        root = merkle.tree_root(leaves, n)
        assert tree.root() == root
        bound = merkle.proof_length_bound(n)
        for m in range(n):
            proof = tree.inclusion_proof(m)
            assert len(proof) <= bound, (m, n)
            assert merkle.verify_inclusion(leaves[m], m, n, proof, root), (m, n)
            checked += 1
        # The per-request path (no kept heads) gives the same proofs.
        for m in {0, n // 2, n - 1}:
            assert merkle.inclusion_proof(leaves, m, n) == tree.inclusion_proof(m)
    assert checked > 10_000


def test_random_consistency_proofs_verify_and_are_short() -> None:
    rng = random.Random(2009)  # noqa: S311 - seeded test data, no secrets
    leaves = [merkle.leaf_hash(d) for d in random_data(rng, 2000)]
    tree = merkle.MerkleTree(leaves)
    pairs = {tuple(sorted(rng.sample(range(1, 2001), 2))) for _ in range(500)}
    pairs |= {(1, 2), (1, 2000), (1024, 2000), (1023, 1024), (1024, 1025), (7, 8)}
    longest = -99
    for first, second in sorted(pairs):
        proof = tree.consistency_proof(first, second)
        # One more than an inclusion proof at most: the first tree's last perfect subtree
        # head, then its path (merkle.proof_length_bound).
        assert len(proof) <= merkle.proof_length_bound(second) + 1, (first, second)
        longest = max(longest, len(proof) - merkle.proof_length_bound(second))
        roots = tree.root(first), tree.root(second)
        assert merkle.verify_consistency(first, second, proof, *roots), (first, second)
    for first, second in rng.sample(sorted(pairs), 20):
        assert merkle.consistency_proof(leaves, first, second) == tree.consistency_proof(
            first, second
        )
    assert len(pairs) >= 500
    assert longest == 1  # the bound is reached, so it is the bound
    assert len(tree.consistency_proof(5, 633)) == 11 == merkle.proof_length_bound(633) + 1


def test_corrupted_proofs_of_random_trees_never_verify() -> None:
    rng = random.Random(1750)  # noqa: S311 - seeded test data, no secrets
    leaves = [merkle.leaf_hash(d) for d in random_data(rng, 1100)]
    tree = merkle.MerkleTree(leaves)
    for n in (*range(2, 40), 511, 512, 513, 1023, 1024, 1025, 1100):
        root = tree.root(n)
        for m in {0, 1, n // 3, n // 2, n - 2, n - 1}:
            proof = tree.inclusion_proof(m, n)
            assert_no_corrupted_inclusion_verifies(leaves[m], m, n, proof, root)
        for first in {1, 2, n // 3, n // 2, n - 1} - {0, n}:
            proof = tree.consistency_proof(first, n)
            roots = tree.root(first), root
            assert_no_corrupted_consistency_verifies(first, n, proof, *roots)


# The corruption probes of verify_test.go, plus every single-bit flip of short proofs --------


def flips(proof: list[bytes], every_bit: bool) -> Iterator[list[bytes]]:
    """The proof with one bit flipped: every bit of a proof of three or fewer hashes, else one
    bit in each element (as verify_test.go does)."""
    for i, element in enumerate(proof):
        positions = range(len(element) * 8) if every_bit else (3,)
        for bit in positions:
            changed = bytearray(element)
            changed[bit // 8] ^= 1 << (bit % 8)
            yield [*proof[:i], bytes(changed), *proof[i + 1 :]]


def assert_no_corrupted_inclusion_verifies(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    probes: list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]] = [
        ("index - 1", (leaf, index - 1, size, proof, root)),
        ("index + 1", (leaf, index + 1, size, proof, root)),
        ("index ^ 2", (leaf, index ^ 2, size, proof, root)),
        ("size * 2", (leaf, index, size * 2, proof, root)),
        ("size / 2", (leaf, index, size // 2, proof, root)),
        ("wrong leaf", (b"WrongLeaf", index, size, proof, root)),
        ("another leaf", (merkle.leaf_hash(b"WrongLeaf"), index, size, proof, root)),
        ("empty root", (leaf, index, size, proof, EMPTY)),
        ("random root", (leaf, index, size, proof, SOME_HASH)),
        ("trailing garbage", (leaf, index, size, [*proof, b""], root)),
        ("trailing root", (leaf, index, size, [*proof, root], root)),
        ("preceding garbage", (leaf, index, size, [b"", *proof], root)),
        ("preceding root", (leaf, index, size, [root, *proof], root)),
    ]
    probes += [
        (f"flip {i}", (leaf, index, size, p, root))
        for i, p in enumerate(flips(proof, len(proof) <= 3))
    ]
    if proof:
        probes.append(("removed component", (leaf, index, size, proof[:-1], root)))
        probes.append(("removed first", (leaf, index, size, proof[1:], root)))
        probes.append(("truncated element", (leaf, index, size, [proof[0][:31], *proof[1:]], root)))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", (leaf, index, size, inserted, root)))
    wrong = [
        name
        for name, args in probes
        if _changed(args, (leaf, index, size, proof, root)) and merkle.verify_inclusion(*args)
    ]
    assert not wrong, f"leaf {index} of {size}: accepted {wrong}"


def assert_no_corrupted_consistency_verifies(
    first: int, second: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    probes: list[tuple[str, tuple[int, int, list[bytes], bytes, bytes]]] = [
        ("size1 - 1", (first - 1, second, proof, root1, root2)),
        ("size1 + 1", (first + 1, second, proof, root1, root2)),
        ("size1 ^ 2", (first ^ 2, second, proof, root1, root2)),
        ("size2 * 2", (first, second * 2, proof, root1, root2)),
        ("size2 / 2", (first, second // 2, proof, root1, root2)),
        ("wrong root1", (first, second, proof, b"WrongRoot", root2)),
        ("wrong root2", (first, second, proof, root1, b"WrongRoot")),
        ("random root1", (first, second, proof, SOME_HASH, root2)),
        ("random root2", (first, second, proof, root1, SOME_HASH)),
        ("swapped roots", (first, second, proof, root2, root1)),
        ("time travel", (second, first, proof, root2, root1)),
        ("empty proof", (first, second, [], root1, root2)),
        ("trailing garbage", (first, second, [*proof, b""], root1, root2)),
        ("trailing root1", (first, second, [*proof, root1], root1, root2)),
        ("trailing root2", (first, second, [*proof, root2], root1, root2)),
        ("preceding garbage", (first, second, [b"", *proof], root1, root2)),
        ("preceding root1", (first, second, [root1, *proof], root1, root2)),
        ("preceding root2", (first, second, [root2, *proof], root1, root2)),
        ("preceding proof[0]", (first, second, [proof[0], *proof], root1, root2)),
        ("truncated proof", (first, second, proof[:-1], root1, root2)),
        ("removed first", (first, second, proof[1:], root1, root2)),
        ("inserted component", (first, second, [proof[0], SOME_HASH, *proof[1:]], root1, root2)),
    ]
    probes += [
        (f"flip {i}", (first, second, p, root1, root2))
        for i, p in enumerate(flips(proof, len(proof) <= 3))
    ]
    wrong = [
        name
        for name, args in probes
        if _changed(args, (first, second, proof, root1, root2)) and merkle.verify_consistency(*args)
    ]
    assert not wrong, f"{first} → {second}: accepted {wrong}"


def _changed(probe: tuple[object, ...], original: tuple[object, ...]) -> bool:
    # Size / 2 of a size-1 tree or a flip that changes nothing would leave the good proof,
    # which must verify; none of the probes above does, but a probe is only counted if it
    # really differs from the good proof.
    return probe != original


def test_the_probe_helpers_do_catch_a_verifier_that_accepts_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Guard against the probes proving nothing: with a verifier that says yes to everything,
    the helpers must fail."""
    always: Callable[..., bool] = lambda *_args: True  # noqa: E731
    monkeypatch.setattr(merkle, "verify_inclusion", always)
    monkeypatch.setattr(merkle, "verify_consistency", always)
    proof = [H(p) for p in INCLUSION[0][2]]
    with pytest.raises(AssertionError, match="accepted"):
        assert_no_corrupted_inclusion_verifies(LEAVES[0], 0, 8, proof, ROOTS[7])
    with pytest.raises(AssertionError, match="accepted"):
        assert_no_corrupted_consistency_verifies(1, 8, proof, ROOTS[0], ROOTS[7])


# Speed ---------------------------------------------------------------------------------------


def test_a_tree_head_over_100k_leaves_takes_well_under_a_second() -> None:
    import time

    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(100_000)]
    started = time.perf_counter()
    root = merkle.tree_root(leaves)
    elapsed = time.perf_counter() - started
    assert merkle.verify_inclusion(
        leaves[77_777], 77_777, 100_000, merkle.inclusion_proof(leaves, 77_777), root
    )
    assert elapsed < 0.5, f"{elapsed:.3f} s"
