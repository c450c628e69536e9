"""The Merkle tree of the record, exactly as RFC 6962 §2.1 / RFC 9162 §2.1 define it.

The tree over leaves D[0:n] is MTH: the empty tree hashes to SHA-256(""), a leaf to
SHA-256(0x00 ‖ leaf), and an inner node over D[0:n] to SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))
with k the largest power of two smaller than n.

Storage. Only *complete* subtrees are stored: node (level, idx) is the hash of leaves
[idx·2^level, (idx+1)·2^level), written once when its last leaf arrives and never changed.
Every subtree that RFC 6962 ever needs (for a root or a proof, of any size up to the
current one) is either such a node or the fold of at most log₂ n of them, so roots and
proofs read O(log n) nodes, in a single batch, and an append writes O(log n) nodes after
reading O(log n). Nothing here ever walks the leaves.

The verifiers are the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and need no store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

NodeKey = tuple[int, int]  # (level, idx): the complete subtree over idx·2^level … (idx+1)·2^level
Node = tuple[int, int, bytes]  # (level, idx, hash)
Range = tuple[int, int]  # leaves [start, end)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 ‖ leaf): the 0x00 prefix keeps a leaf from passing as an inner node."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class NodeStore(Protocol):
    """Where the complete-subtree hashes live: a database table, or memory."""

    def size(self) -> int:
        """How many leaves have been appended."""
        ...

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes at ``keys``, in order; raises ``LookupError`` if one is missing."""
        ...

    def put_nodes(self, nodes: Sequence[Node]) -> None:
        """Store newly completed nodes; a level-0 node at idx i makes the size i + 1."""
        ...


class MemoryNodeStore:
    """Every node in memory: for tests, for serving a tree built in memory, for small logs.

    Each level is one bytearray of 32-byte hashes (64 MB for a million leaves, instead of
    hundreds of MB as a dict of bytes objects).
    """

    def __init__(self) -> None:
        self.levels: list[bytearray] = []
        self.reads = 0  # how many node hashes were read: what roots and proofs are charged for

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MemoryNodeStore:
        """A store holding the whole tree over ``hashes``, built level by level (fast)."""
        store = cls()
        level = bytearray().join(hashes)
        while level:
            store.levels.append(level)
            level = bytearray().join(
                hashlib.sha256(b"\x01" + level[i : i + 2 * HASH_SIZE]).digest()
                for i in range(0, len(level) - HASH_SIZE, 2 * HASH_SIZE)
            )
        return store

    def size(self) -> int:
        return len(self.levels[0]) // HASH_SIZE if self.levels else 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        self.reads += len(keys)
        return [self._get(level, idx) for level, idx in keys]

    def put_nodes(self, nodes: Sequence[Node]) -> None:
        for level, idx, digest in nodes:
            while len(self.levels) <= level:
                self.levels.append(bytearray())
            if len(self.levels[level]) != idx * HASH_SIZE:
                raise ValueError(f"node ({level}, {idx}) is not the next one of its level")
            self.levels[level] += digest

    def _get(self, level: int, idx: int) -> bytes:
        if level < len(self.levels) and 0 <= idx < len(self.levels[level]) // HASH_SIZE:
            return bytes(self.levels[level][idx * HASH_SIZE : (idx + 1) * HASH_SIZE])
        raise LookupError(f"no Merkle node at level {level}, idx {idx}")


class FrontierStore:
    """Keeps only the nodes that later appends and the current root need: O(log n) memory.

    Those are the complete subtrees of the current size's binary decomposition (one per set
    bit), so a whole log can be recomputed as a stream, e.g. by ``deconflict verify``.
    """

    def __init__(self) -> None:
        self.nodes: dict[NodeKey, bytes] = {}
        self._size = 0

    def size(self) -> int:
        return self._size

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        try:
            return [self.nodes[key] for key in keys]
        except KeyError as exc:
            raise LookupError(f"node {exc.args[0]} is no longer on the frontier") from exc

    def put_nodes(self, nodes: Sequence[Node]) -> None:
        for level, idx, digest in nodes:
            self.nodes[(level, idx)] = digest
            if level == 0:
                self._size = max(self._size, idx + 1)
        keep = set(_decomposition(0, self._size))
        self.nodes = {key: h for key, h in self.nodes.items() if key in keep}


def append(store: NodeStore, leaf_digest: bytes) -> list[Node]:
    """Append one leaf hash; store and return every node it completes (leaf first, root-most last).

    The new leaf at index i completes one node per trailing 1 bit of i: at each such level it
    is the right child and its left sibling is already stored, so the cost is O(log n).
    """
    index = store.size()
    sibling_keys: list[NodeKey] = []
    level = 0
    while (index >> level) & 1:
        sibling_keys.append((level, (index >> level) - 1))
        level += 1
    siblings = store.get_nodes(sibling_keys)
    new_nodes: list[Node] = [(0, index, leaf_digest)]
    current = leaf_digest
    for (level, sibling_idx), sibling in zip(sibling_keys, siblings, strict=True):
        current = node_hash(sibling, current)
        new_nodes.append((level + 1, (sibling_idx + 1) // 2, current))
    store.put_nodes(new_nodes)
    return new_nodes


def root(store: NodeStore, size: int) -> bytes:
    """MTH(D[0:size]) for any size up to the store's: at most log₂ size node reads."""
    _check_size(store, size)
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges(store, [(0, size)])[0]


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, nearest the leaf first."""
    _check_size(store, size)
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    return _hash_ranges(store, _inclusion_ranges(index, 0, size))


def consistency_proof(store: NodeStore, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 6962 §2.1.2; empty when first is 0 or equals second."""
    _check_size(store, second)
    if not 0 <= first <= second:
        raise ValueError(f"cannot prove size {first} consistent with size {second}")
    if first in (0, second):
        return []
    return _hash_ranges(store, _consistency_ranges(first, 0, second, whole=True))


def verify_inclusion(
    leaf_digest: bytes, index: int, size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove leaf ``index`` of the tree ``root_hash``?"""
    if not 0 <= index < size or not _well_formed(path):
        return False
    fn, sn = index, size - 1
    result = leaf_digest
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root_hash


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree ``first_root`` a prefix of the tree ``second_root``?"""
    if not 0 <= first <= second or not _well_formed(path):
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        # Every tree extends the empty one; the proof is empty by definition.
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    if first & (first - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_result = second_result = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(node, first_result)
            second_result = node_hash(node, second_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_result = node_hash(second_result, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first_result == first_root and second_result == second_root


# --- which subtrees a proof needs -------------------------------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    """k of RFC 6962: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_ranges(index: int, start: int, end: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index - start, D[start:end]), leaf side first."""
    if end - start == 1:
        return []
    split = start + _largest_power_of_two_below(end - start)
    if index < split:
        return [*_inclusion_ranges(index, start, split), (split, end)]
    return [*_inclusion_ranges(index, split, end), (start, split)]


def _consistency_ranges(first: int, start: int, end: int, *, whole: bool) -> list[Range]:
    """The subtrees of SUBPROOF(first - start, D[start:end], whole) (RFC 6962 §2.1.2)."""
    if first == end:
        return [] if whole else [(start, end)]
    split = start + _largest_power_of_two_below(end - start)
    if first <= split:
        return [*_consistency_ranges(first, start, split, whole=whole), (split, end)]
    return [*_consistency_ranges(first, split, end, whole=False), (start, split)]


def _decomposition(start: int, end: int) -> list[NodeKey]:
    """The stored complete subtrees that make up [start, end), largest first.

    RFC 6962 only ever splits [start, end) so that ``start`` is a multiple of a power of two at
    least end - start; then the binary digits of end - start, from the top, are aligned nodes.
    """
    keys: list[NodeKey] = []
    position, remaining = start, end - start
    while remaining:
        level = remaining.bit_length() - 1
        width = 1 << level
        assert position % width == 0, "range is not made of aligned subtrees"
        keys.append((level, position >> level))
        position += width
        remaining -= width
    return keys


def _hash_ranges(store: NodeStore, ranges: Sequence[Range]) -> list[bytes]:
    """MTH of each range, reading all the nodes they need in one batch."""
    pieces = [_decomposition(start, end) for start, end in ranges]
    hashes = iter(store.get_nodes([key for keys in pieces for key in keys]))
    result = []
    for keys in pieces:
        # MTH of a range folds its pieces from the right: the big left subtree is the left child
        # of the hash of everything after it.
        piece_hashes = [next(hashes) for _ in keys]
        digest = piece_hashes[-1]
        for left in reversed(piece_hashes[:-1]):
            digest = node_hash(left, digest)
        result.append(digest)
    return result


def _check_size(store: NodeStore, size: int) -> None:
    if not 0 <= size <= store.size():
        raise ValueError(f"size {size} is beyond the log (size {store.size()})")


def _well_formed(path: Sequence[bytes]) -> bool:
    return all(isinstance(node, bytes) and len(node) == HASH_SIZE for node in path)
