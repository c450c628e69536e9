"""The Merkle tree against an independent reference written here from RFC 6962 §2.1.

The reference (``Reference``) uses only hashlib and the recursive definitions of MTH, PATH
and PROOF as the RFC states them; the module under test computes the same values from stored
complete subtrees. They must agree exactly, for every size 1..200 with every index and every
pair of sizes, and for random sizes up to 10^6.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.record import merkle

# --- the independent reference: RFC 6962 §2.1, word for word --------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def entry(i: int) -> bytes:
    return f"entry {i}".encode()


def reference_leaf(i: int) -> bytes:
    return sha256(b"\x00" + entry(i))


class Reference:
    """MTH, PATH and PROOF over the leaves entry(0), entry(1), ... (RFC 6962 §2.1.1, §2.1.2).

    Subtree hashes of at least ``memo_from`` leaves are memoised so that many proofs over a
    million leaves cost what one root does; the definitions themselves are unchanged.
    """

    def __init__(self, leaf: Callable[[int], bytes], memo_from: int = 1) -> None:
        self.leaf = leaf
        self.memo_from = memo_from
        self.memo: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k(n: int) -> int:
        """The largest power of two smaller than n."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return sha256(b"")
        if n == 1:
            return self.leaf(start)
        if n >= self.memo_from and (start, end) in self.memo:
            return self.memo[(start, end)]
        k = self.k(n)
        result = sha256(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end))
        if n >= self.memo_from:
            self.memo[(start, end)] = result
        return result

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]) with m relative to start."""
        n = end - start
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.k(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]


# --- fixtures --------------------------------------------------------------------------------


def leaf_hashes(count: int) -> Iterator[bytes]:
    return (merkle.leaf_hash(entry(i)) for i in range(count))


@pytest.fixture(scope="module")
def small() -> tuple[merkle.MemoryNodeStore, Reference]:
    """A 200-leaf store built by append, one leaf at a time, as the service does."""
    store = merkle.MemoryNodeStore()
    for digest in leaf_hashes(200):
        merkle.append(store, digest)
    return store, Reference(reference_leaf)


MILLION = 1_000_000


@pytest.fixture(scope="module")
def million() -> tuple[merkle.MemoryNodeStore, Reference]:
    store = merkle.MemoryNodeStore.from_leaf_hashes(leaf_hashes(MILLION))
    return store, Reference(reference_leaf, memo_from=512)


def log2_ceil(n: int) -> int:
    return max(1, (n - 1).bit_length())


# --- hashing ---------------------------------------------------------------------------------


def test_leaf_and_node_hash_use_the_rfc_domain_prefixes() -> None:
    assert merkle.leaf_hash(b"abc") == sha256(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle.root(merkle.MemoryNodeStore(), 0) == sha256(b"")


def test_append_returns_the_nodes_it_completes() -> None:
    store = merkle.MemoryNodeStore()
    for digest in leaf_hashes(7):
        merkle.append(store, digest)
    new = merkle.append(store, merkle.leaf_hash(entry(7)))  # index 7 = 0b111 completes 4 nodes
    assert [(level, idx) for level, idx, _ in new] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert new[-1][2] == Reference(reference_leaf).mth(0, 8)


def test_append_reads_one_node_per_completed_level() -> None:
    store = merkle.MemoryNodeStore()
    for digest in leaf_hashes(1023):
        merkle.append(store, digest)
    store.reads = 0
    merkle.append(store, merkle.leaf_hash(entry(1023)))
    assert store.reads == 10


# --- every size 1..200 -----------------------------------------------------------------------


def test_root_of_every_size(small: tuple[merkle.MemoryNodeStore, Reference]) -> None:
    store, reference = small
    for size in range(1, 201):
        assert merkle.root(store, size) == reference.mth(0, size), size


def test_inclusion_proof_of_every_index_of_every_size(
    small: tuple[merkle.MemoryNodeStore, Reference],
) -> None:
    store, reference = small
    for size in range(1, 201):
        root = reference.mth(0, size)
        for index in range(size):
            path = merkle.inclusion_proof(store, index, size)
            assert path == reference.path(index, 0, size), (index, size)
            assert merkle.verify_inclusion(reference_leaf(index), index, size, path, root)


def test_consistency_proof_of_every_pair_of_sizes(
    small: tuple[merkle.MemoryNodeStore, Reference],
) -> None:
    store, reference = small
    for second in range(1, 201):
        second_root = reference.mth(0, second)
        for first in range(1, second + 1):
            path = merkle.consistency_proof(store, first, second)
            assert path == reference.proof(first, second), (first, second)
            first_root = reference.mth(0, first)
            assert merkle.verify_consistency(first, second, first_root, second_root, path)


def test_consistency_from_the_empty_tree() -> None:
    store = merkle.MemoryNodeStore.from_leaf_hashes(leaf_hashes(5))
    assert merkle.consistency_proof(store, 0, 5) == []
    assert merkle.verify_consistency(0, 5, sha256(b""), merkle.root(store, 5), [])
    assert not merkle.verify_consistency(0, 5, b"x" * 32, merkle.root(store, 5), [])


# --- verifiers refuse what does not prove ----------------------------------------------------


def flipped(node: bytes) -> bytes:
    return bytes([node[0] ^ 1]) + node[1:]


@pytest.mark.parametrize("size", [*range(1, 40), 64, 65, 127, 128, 129])
def test_inclusion_verifier_rejects_every_alteration(
    small: tuple[merkle.MemoryNodeStore, Reference], size: int
) -> None:
    store, reference = small
    root = reference.mth(0, size)
    for index in range(size):
        leaf = reference_leaf(index)
        path = merkle.inclusion_proof(store, index, size)
        for position in range(len(path)):
            bad = [*path[:position], flipped(path[position]), *path[position + 1 :]]
            assert not merkle.verify_inclusion(leaf, index, size, bad, root)
        assert not merkle.verify_inclusion(flipped(leaf), index, size, path, root)
        assert not merkle.verify_inclusion(leaf, index, size, path, flipped(root))
        assert not merkle.verify_inclusion(leaf, index, size, [*path, root], root)
        assert not merkle.verify_inclusion(leaf, index, size, [b"short"], root)
        assert not merkle.verify_inclusion(leaf, size, size, path, root)
        if path:
            assert not merkle.verify_inclusion(leaf, index, size, path[:-1], root)
        if size > 1:
            other = (index + 1) % size
            assert not merkle.verify_inclusion(leaf, other, size, path, root)


@pytest.mark.parametrize("second", [*range(2, 34), 64, 65, 100])
def test_consistency_verifier_rejects_every_alteration(
    small: tuple[merkle.MemoryNodeStore, Reference], second: int
) -> None:
    store, reference = small
    second_root = reference.mth(0, second)
    for first in range(1, second):
        first_root = reference.mth(0, first)
        path = merkle.consistency_proof(store, first, second)
        for position in range(len(path)):
            bad = [*path[:position], flipped(path[position]), *path[position + 1 :]]
            assert not merkle.verify_consistency(first, second, first_root, second_root, bad)
        verify = merkle.verify_consistency
        assert not verify(first, second, flipped(first_root), second_root, path)
        assert not verify(first, second, first_root, flipped(second_root), path)
        assert not verify(first, second, first_root, second_root, path[:-1])
        assert not verify(first, second, first_root, second_root, [*path, second_root])
        assert not verify(first, second, first_root, second_root, [])
        assert not verify(second, first, second_root, first_root, path)
        if first + 1 < second:  # a proof is for one pair of sizes only
            assert not verify(first + 1, second, first_root, second_root, path)


def test_same_size_is_consistent_only_with_the_same_root() -> None:
    root = sha256(b"r")
    assert merkle.verify_consistency(7, 7, root, root, [])
    assert not merkle.verify_consistency(7, 7, root, flipped(root), [])
    assert not merkle.verify_consistency(7, 7, root, root, [root])


def test_out_of_range_requests_are_refused() -> None:
    store = merkle.MemoryNodeStore.from_leaf_hashes(leaf_hashes(10))
    for call in (
        lambda: merkle.root(store, 11),
        lambda: merkle.inclusion_proof(store, 10, 10),
        lambda: merkle.inclusion_proof(store, -1, 10),
        lambda: merkle.inclusion_proof(store, 0, 11),
        lambda: merkle.consistency_proof(store, 5, 11),
        lambda: merkle.consistency_proof(store, 6, 5),
    ):
        with pytest.raises(ValueError):
            call()


# --- streaming with O(log n) memory ----------------------------------------------------------


def test_frontier_store_gives_the_same_roots_and_nodes_in_log_memory() -> None:
    full, frontier = merkle.MemoryNodeStore(), merkle.FrontierStore()
    for i, digest in enumerate(leaf_hashes(300)):
        assert merkle.append(frontier, digest) == merkle.append(full, digest)
        size = i + 1
        assert merkle.root(frontier, size) == merkle.root(full, size)
        assert len(frontier.nodes) == bin(size).count("1")


# --- a million leaves ------------------------------------------------------------------------


def test_million_leaf_proofs_match_the_reference_and_read_log_n_nodes(
    million: tuple[merkle.MemoryNodeStore, Reference],
) -> None:
    store, reference = million
    rng = random.Random(6962)
    sizes = [MILLION, 2**19, 2**19 + 1, *(rng.randrange(1, MILLION + 1) for _ in range(6))]
    for size in sizes:
        root = reference.mth(0, size)
        store.reads = 0
        assert merkle.root(store, size) == root
        assert store.reads <= log2_ceil(size)
        for index in [0, size - 1, *(rng.randrange(size) for _ in range(5))]:
            store.reads = 0
            path = merkle.inclusion_proof(store, index, size)
            assert store.reads <= 2 * log2_ceil(size)
            assert path == reference.path(index, 0, size)
            assert merkle.verify_inclusion(reference_leaf(index), index, size, path, root)
        for first in [1, size - 1, *(rng.randrange(1, size + 1) for _ in range(5))]:
            first = max(first, 1)
            store.reads = 0
            path = merkle.consistency_proof(store, first, size)
            assert store.reads <= 2 * log2_ceil(size)
            assert path == reference.proof(first, size)
            first_root = reference.mth(0, first)
            assert merkle.verify_consistency(first, size, first_root, root, path)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_inclusion_and_consistency_proof_verifies(
    million: tuple[merkle.MemoryNodeStore, Reference], data: st.DataObject
) -> None:
    store, _ = million
    size = data.draw(st.integers(1, MILLION), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(0, size), label="first")
    root = merkle.root(store, size)
    leaf = merkle.leaf_hash(entry(index))
    assert merkle.verify_inclusion(
        leaf, index, size, merkle.inclusion_proof(store, index, size), root
    )
    path = merkle.consistency_proof(store, first, size)
    assert merkle.verify_consistency(first, size, merkle.root(store, first), root, path)
