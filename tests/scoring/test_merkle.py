"""RFC 9162 Merkle hashing and proofs (scoring/transparency/merkle.py) against published vectors.

The vectors are Certificate Transparency's, as kept in transparency-dev/merkle (Apache-2.0):
rfc6962/rfc6962_test.go (leaf and node hashes) and proof/verify_test.go (the eight leaves, the
roots of their trees of size 1..8, and inclusion and consistency proofs between them, including
the corruptions a verifier must refuse).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from pilotlab.errors import RecordInvalid
from scoring.transparency.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# proof/verify_test.go: `leaves`, `roots` (roots[n-1] is the tree of the first n leaves)
LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
# `inclusionProofs`: (leaf number counting from 1, tree size, path)
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# `consistencyProofs`: (size1, size2, path)
CONSISTENCY = [
    (1, 1, []),
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
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
HASHED = [leaf_hash(entry) for entry in LEAVES]


def test_leaf_node_and_empty_hashes_are_rfc_6962s():
    # rfc6962/rfc6962_test.go: TestRFC6962Hasher
    assert EMPTY_ROOT == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


@pytest.mark.parametrize("size", range(0, 9))
def test_the_root_of_every_prefix_of_the_eight_leaves_is_the_published_one(size):
    assert root_hash(HASHED[:size]) == (ROOTS[size - 1] if size else EMPTY_ROOT)


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_proofs_are_the_published_ones_and_verify(leaf, size, path):
    proof = inclusion_proof(leaf - 1, HASHED[:size])
    assert proof == [h(p) for p in path]
    verify_inclusion(HASHED[leaf - 1], leaf - 1, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_are_the_published_ones_and_verify(first, second, path):
    proof = consistency_proof(first, HASHED[:second])
    assert proof == [h(p) for p in path]
    verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], proof)


def _flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    return [p if j != i else bytes([p[0] ^ bit]) + p[1:] for j, p in enumerate(proof)]


def _refused(check: Callable[..., None], *args: object) -> bool:
    try:
        check(*args)
    except RecordInvalid:
        return True
    return False


@pytest.mark.parametrize(("leaf", "size", "path"), [v for v in INCLUSION if v[2]])
def test_corrupted_inclusion_proofs_are_refused(leaf, size, path):
    # verify_test.go: corruptInclusionProof
    index, proof, root, leaf_h = leaf - 1, [h(p) for p in path], ROOTS[size - 1], HASHED[leaf - 1]
    probes = {
        "index - 1": (index - 1, size, root, leaf_h, proof), "index + 1": (index + 1, size, root, leaf_h, proof),
        "index ^ 2": (index ^ 2, size, root, leaf_h, proof), "size * 2": (index, size * 2, root, leaf_h, proof),
        "size / 2": (index, size // 2, root, leaf_h, proof), "wrong leaf": (index, size, root, b"WrongLeaf", proof),
        "empty root": (index, size, EMPTY_ROOT, leaf_h, proof), "random root": (index, size, SOME_HASH, leaf_h, proof),
        "trailing garbage": (index, size, root, leaf_h, [*proof, b""]), "trailing root": (index, size, root, leaf_h, [*proof, root]),
        "preceding garbage": (index, size, root, leaf_h, [b"", *proof]), "preceding root": (index, size, root, leaf_h, [root, *proof]),
        "removed component": (index, size, root, leaf_h, proof[:-1]),
        **{f"modified proof[{i}]": (index, size, root, leaf_h, _flip(proof, i, 8)) for i in range(len(proof))},
    }
    if len(proof) > 1:
        probes["inserted component"] = (index, size, root, leaf_h, [proof[0], SOME_HASH, *proof[1:]])
    accepted = [name for name, (i, n, r, lf, p) in probes.items() if not _refused(verify_inclusion, lf, i, n, p, r)]
    assert accepted == []


@pytest.mark.parametrize(("first", "second", "path"), [v for v in CONSISTENCY if v[2]])
def test_corrupted_consistency_proofs_are_refused(first, second, path):
    # verify_test.go: corruptConsistencyProof
    proof, r1, r2 = [h(p) for p in path], ROOTS[first - 1], ROOTS[second - 1]
    probes = {
        "size1 - 1": (first - 1, second, r1, r2, proof), "size1 + 1": (first + 1, second, r1, r2, proof),
        "size1 ^ 2": (first ^ 2, second, r1, r2, proof), "size2 * 2": (first, second * 2, r1, r2, proof),
        "size2 / 2": (first, second // 2, r1, r2, proof), "wrong root1": (first, second, b"WrongRoot", r2, proof),
        "wrong root2": (first, second, r1, b"WrongRoot", proof), "swapped roots": (first, second, r2, r1, proof),
        "empty proof": (first, second, r1, r2, []), "trailing garbage": (first, second, r1, r2, [*proof, b""]),
        "trailing root1": (first, second, r1, r2, [*proof, r1]), "trailing root2": (first, second, r1, r2, [*proof, r2]),
        "preceding garbage": (first, second, r1, r2, [b"", *proof]), "preceding root1": (first, second, r1, r2, [r1, *proof]),
        "preceding root2": (first, second, r1, r2, [r2, *proof]), "preceding proof[0]": (first, second, r1, r2, [proof[0], *proof]),
        "truncated proof": (first, second, r1, r2, proof[:-1]),
        **{f"modified proof[{i}]": (first, second, r1, r2, _flip(proof, i, 16)) for i in range(len(proof))},
    }
    accepted = [name for name, (a, b, x, y, p) in probes.items() if not _refused(verify_consistency, a, b, x, y, p)]
    assert accepted == []


def test_trivial_consistency_holds_only_with_an_empty_proof_and_equal_roots():
    # verify_test.go: TestVerifyConsistency's table
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 1, EMPTY_ROOT, ROOTS[0], [])
    verify_consistency(1, 1, ROOTS[0], ROOTS[0], [])
    for first, second, r1, r2, proof in ((1, 1, ROOTS[0], ROOTS[1], []), (1, 0, ROOTS[0], EMPTY_ROOT, []),
                                         (2, 1, ROOTS[1], ROOTS[0], []), (1, 2, ROOTS[0], ROOTS[1], []),
                                         (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
                                         (0, 1, EMPTY_ROOT, ROOTS[0], [EMPTY_ROOT]), (1, 1, ROOTS[0], ROOTS[0], [EMPTY_ROOT])):
        with pytest.raises(RecordInvalid):
            verify_consistency(first, second, r1, r2, proof)


def _mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) as RFC 9162 §2.1.1 writes it, over leaf hashes."""
    if len(d) <= 1:
        return d[0] if d else EMPTY_ROOT
    k = 1
    while k * 2 < len(d):
        k *= 2
    return node_hash(_mth(d[:k]), _mth(d[k:]))


def test_every_proof_in_trees_up_to_64_leaves_verifies_and_a_wrong_leaf_never_does():
    # beyond the vectors: every (index, size) and (size1, size2), against the RFC's recursive MTH
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(64)]
    roots = [_mth(leaves[:n]) for n in range(65)]
    assert roots[1:] == [root_hash(leaves[:n]) for n in range(1, 65)]
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(index, leaves[:size])
            verify_inclusion(leaves[index], index, size, proof, roots[size])
            with pytest.raises(RecordInvalid):
                verify_inclusion(leaves[(index + 1) % 64], index, size, proof, roots[size])
        for first in range(size + 1):
            verify_consistency(first, size, roots[first], roots[size], consistency_proof(first, leaves[:size]))
