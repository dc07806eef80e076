// RFC 9162 Merkle tree proofs, verified as scoring/transparency/merkle.py verifies them: a leaf is
// SHA-256(0x00 || entry), a node SHA-256(0x01 || left || right). Sizes and indexes are BigInt, so
// the bit arithmetic holds past 2^31.
import { concat, equal, sha256 } from "./bytes.js";

export class ProofError extends Error {}

export function leafHash(entry) {
  return sha256(concat(new Uint8Array([0]), entry));
}

function nodeHash(left, right) {
  return sha256(concat(new Uint8Array([1]), left, right));
}

// §2.1.3.2: `path` proves `leaf` is leaf `index` of the tree of `size` leaves whose hash is `root`.
export async function verifyInclusion(leaf, index, size, path, root) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) {
    throw new ProofError(`inclusion proof: leaf ${index} is not in a tree of ${size} leaves`);
  }
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) {
      throw new ProofError("inclusion proof: longer than the tree is deep");
    }
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) {
    throw new ProofError("inclusion proof: shorter than the tree is deep");
  }
  if (!equal(r, root)) {
    throw new ProofError(`inclusion proof: leaf ${index} does not lead to the root of the tree of ${size}`);
  }
}

// §2.1.4.2: `path` proves the tree of `first` leaves (hash firstRoot) is a prefix of the tree of
// `second` leaves (hash secondRoot).
export async function verifyConsistency(first, second, firstRoot, secondRoot, path) {
  const m = BigInt(first);
  const n = BigInt(second);
  if (m < 0n || m > n) {
    throw new ProofError(`consistency proof: tree size ${first} cannot precede tree size ${second}`);
  }
  if (m === n || m === 0n) {
    if (path.length) {
      throw new ProofError(`consistency proof: must be empty from size ${first} to ${second}`);
    }
    if (m === n && !equal(firstRoot, secondRoot)) {
      throw new ProofError(`two different roots for the same tree size ${first}`);
    }
    return;
  }
  if (!path.length) {
    throw new ProofError(`consistency proof: empty, but size ${first} to ${second} needs hashes`);
  }
  const hashes = (m & (m - 1n)) === 0n ? [firstRoot, ...path] : [...path];
  let fn = m - 1n;
  let sn = n - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = hashes[0];
  let sr = hashes[0];
  for (const c of hashes.slice(1)) {
    if (sn === 0n) {
      throw new ProofError("consistency proof: longer than the trees are deep");
    }
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) {
    throw new ProofError("consistency proof: shorter than the trees are deep");
  }
  if (!equal(fr, firstRoot)) {
    throw new ProofError(`consistency proof: does not lead to the older root (size ${first})`);
  }
  if (!equal(sr, secondRoot)) {
    throw new ProofError(`consistency proof: does not lead to the newer root (size ${second})`);
  }
}
