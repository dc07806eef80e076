"""RFC 9162 Merkle tree hashing, inclusion and consistency proofs, and their verification.

The tree of Certificate Transparency 2.0 (RFC 9162 §2.1; the same hashing as RFC 6962): a leaf is
SHA-256(0x00 || entry), a node SHA-256(0x01 || left || right), the tree of n > 1 leaves splits at
the largest power of two below n, the empty tree's hash is SHA-256 of nothing. Proofs are lists of
32-byte hashes in the RFC's order (from the leaf up), so any RFC 9162 verifier can check ours.

Written here, not taken from pymerkle 7.0.0 (PyPI), which was evaluated for it: its roots and
inclusion paths agree with RFC 6962's test vectors, but it is GPL-3.0-or-later (this project is
Apache-2.0), its consistency proofs are a format of its own (extra hashes plus "rule" and
"subset" lists, not RFC 9162's path) that no CT verifier reads, and its README asks for a
security audit before use. The algorithms are the RFC's own, short, and tested against the
published vectors of transparency-dev/merkle (tests/scoring/test_merkle.py).

Proof generation takes the leaf hashes of the tree (one read of 32 bytes per leaf) and is O(n)
hashing; a log of reference records stays small enough for that (see README, Transparency log).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pilotlab.errors import RecordInvalid

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for hi > lo."""
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return node_hash(_subtree(leaves, lo, lo + k), _subtree(leaves, lo + k, hi))


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """The tree hash of these leaf hashes (RFC 9162 §2.1.1)."""
    return _subtree(leaves, 0, len(leaves)) if leaves else EMPTY_ROOT


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 §2.1.3.1 for the tree of these leaf hashes."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_subtree(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree(leaves, lo, lo + k))
            lo += k
    return path[::-1]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(first, D[n]) of RFC 9162 §2.1.4.1: the tree of the first `first` leaves is a prefix
    of the tree of all of them. Empty when first is 0 or n."""
    second = len(leaves)
    if not 0 <= first <= second:
        raise ValueError(f"tree size {first} is not within 0..{second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    lo, hi, m, whole = 0, second, first, True  # SUBPROOF(m, D[lo:hi], whole)
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(_subtree(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree(leaves, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(_subtree(leaves, lo, hi))
    return path[::-1]


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise RecordInvalid(f"{what}: every hash must be {HASH_SIZE} bytes")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: `path` proves the leaf hash `leaf` is leaf `index` of the tree of `size`
    leaves whose hash is `root`; else RecordInvalid(reason)."""
    _check_hashes("inclusion proof", [leaf, root, *path])
    if not 0 <= index < size:
        raise RecordInvalid(f"inclusion proof: leaf {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise RecordInvalid("inclusion proof: longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise RecordInvalid("inclusion proof: shorter than the tree is deep")
    if not _same(r, root):
        raise RecordInvalid(f"inclusion proof: leaf {index} does not lead to the root of the tree of {size}")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: `path` proves the tree of `first` leaves (hash `first_root`) is a prefix
    of the tree of `second` leaves (hash `second_root`); else RecordInvalid(reason)."""
    _check_hashes("consistency proof", [first_root, second_root, *path])
    if not 0 <= first <= second:
        raise RecordInvalid(f"consistency proof: tree size {first} cannot precede tree size {second}")
    if first == second or first == 0:
        if path:
            raise RecordInvalid(f"consistency proof: must be empty from size {first} to {second}")
        if first == second and not _same(first_root, second_root):
            raise RecordInvalid(f"two different roots for the same tree size {first}")
        return
    if not path:
        raise RecordInvalid(f"consistency proof: empty, but size {first} to {second} needs hashes")
    hashes = [first_root, *path] if first & (first - 1) == 0 else list(path)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise RecordInvalid("consistency proof: longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise RecordInvalid("consistency proof: shorter than the trees are deep")
    if not _same(fr, first_root):
        raise RecordInvalid(f"consistency proof: does not lead to the older root (size {first})")
    if not _same(sr, second_root):
        raise RecordInvalid(f"consistency proof: does not lead to the newer root (size {second})")
