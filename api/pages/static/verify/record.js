// A record file or bundle checked in the browser, as scoring.records.verify and
// scoring.transparency.bundle.verify_bundle check it, then tied to the log's newest signed tree
// head: a bundle by a consistency proof from its own tree head, a bare record by an inclusion
// proof asked for by the record's hash. `log` fetches from pilotlab (public key, tree head,
// proofs); the file itself is never sent.
import { canonicalBytes } from "./canonical.js";
import { equal, hex, hexHash, sha256 } from "./bytes.js";
import { leafHash, verifyConsistency, verifyInclusion } from "./merkle.js";
import { importPublicKey, signs } from "./signatures.js";

// the record formats scoring.records.verify accepts (RECORD_FORMATS there), and conformance reports
// (conformance.report.REPORT_FORMAT: signed and logged as records are)
export const RECORD_FORMATS = ["pilotlab-reference-record/1", "pilotlab-reference-record/2"];
export const REPORT_FORMAT = "pilotlab-conformance-report/1";
const SIGNED_FORMATS = [...RECORD_FORMATS, REPORT_FORMAT];
export const BUNDLE_FORMAT = "pilotlab-record-bundle/1";
export const TREE_HEAD_FORMAT = "pilotlab-tree-head/1";

export class Invalid extends Error {}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const hasKeys = (value, keys) => isObject(value) && Object.keys(value).length === keys.length
  && keys.every((key) => Object.hasOwn(value, key));
const isCount = (value) => Number.isSafeInteger(value) && value >= 0;

// The JSON in `bytes`, which must be exactly its own RFC 8785 form (so any changed byte fails).
function canonicalJson(bytes, what) {
  let value;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Invalid(`${what} is not JSON text: ${error.message}`);
  }
  let canonical = null;
  try {
    canonical = canonicalBytes(value);
  } catch {
    // a value RFC 8785 cannot encode: not canonical
  }
  if (canonical === null || !equal(canonical, bytes)) {
    throw new Invalid(`${what} is not in RFC 8785 canonical form: it was altered after it was made`);
  }
  return value;
}

async function checkRecord(bytes, key, steps) {
  const envelope = canonicalJson(bytes, "the record");
  if (!hasKeys(envelope, ["record", "signature"])) {
    throw new Invalid("not a signed record: expected exactly the keys 'record' and 'signature'");
  }
  steps.push("the record is in RFC 8785 canonical form");
  const { record, signature } = envelope;
  if (!isObject(signature) || signature.alg !== "Ed25519") {
    throw new Invalid("signature.alg must be 'Ed25519'");
  }
  if (signature.key_id !== key.keyId) {
    throw new Invalid(`signed by key ${JSON.stringify(signature.key_id)}, not by this server's key "${key.keyId}"`);
  }
  if (!await signs(key, signature.value, canonicalBytes(record))) {
    throw new Invalid("the signature does not match the record: it was altered or signed by another key");
  }
  if (!isObject(record) || !SIGNED_FORMATS.includes(record.format)) {
    throw new Invalid(`record.format is not one of ${SIGNED_FORMATS.join(", ")}`);
  }
  steps.push(`the record's Ed25519 signature holds (key ${key.keyId})`);
  return record;
}

async function checkTreeHead(envelope, key, what) {
  if (!hasKeys(envelope, ["tree_head", "signature"])) {
    throw new Invalid(`${what}: not a signed tree head`);
  }
  const { tree_head: body, signature } = envelope;
  if (!hasKeys(body, ["format", "log_id", "tree_size", "root_hash", "timestamp"]) || body.format !== TREE_HEAD_FORMAT) {
    throw new Invalid(`${what}: expected "${TREE_HEAD_FORMAT}" with format, log_id, tree_size, root_hash, timestamp`);
  }
  const root = hexHash(body.root_hash);
  if (!isCount(body.tree_size) || root === null || typeof body.timestamp !== "string") {
    throw new Invalid(`${what}: tree_size must be a whole number, root_hash 64 lower-case hex digits`);
  }
  if (!isObject(signature) || signature.alg !== "Ed25519" || signature.key_id !== key.keyId || body.log_id !== key.logId) {
    throw new Invalid(`${what} is not signed by this server's key "${key.keyId}"`);
  }
  if (!await signs(key, signature.value, canonicalBytes(body))) {
    throw new Invalid(`${what} of size ${body.tree_size}: the signature does not match: it was altered`);
  }
  return { treeSize: body.tree_size, root, timestamp: body.timestamp };
}

async function checkBundle(bundle, key, steps) {
  if (!hasKeys(bundle, ["format", "record", "inclusion", "tree_head"]) || typeof bundle.record !== "string") {
    throw new Invalid(`not a record bundle: expected "${BUNDLE_FORMAT}" with record, inclusion and tree_head`);
  }
  steps.push("the bundle is in RFC 8785 canonical form");
  const entry = new TextEncoder().encode(bundle.record);
  const record = await checkRecord(entry, key, steps);
  const head = await checkTreeHead(bundle.tree_head, key, "the bundle's tree head");
  steps.push(`the bundle's tree head (size ${head.treeSize}) is signed by the log`);
  const { inclusion } = bundle;
  if (!hasKeys(inclusion, ["leaf_index", "tree_size", "audit_path"]) || !isCount(inclusion.leaf_index)
      || !isCount(inclusion.tree_size) || !Array.isArray(inclusion.audit_path)) {
    throw new Invalid("inclusion: expected leaf_index and tree_size (whole numbers) and audit_path (a list)");
  }
  const path = inclusion.audit_path.map(hexHash);
  if (path.includes(null)) {
    throw new Invalid("inclusion: audit_path must hold hashes of 64 lower-case hex digits");
  }
  if (inclusion.tree_size !== head.treeSize) {
    throw new Invalid(`the inclusion proof is for tree size ${inclusion.tree_size}, the tree head is of size ${head.treeSize}`);
  }
  await verifyInclusion(await leafHash(entry), inclusion.leaf_index, head.treeSize, path, head.root);
  steps.push(`the record is leaf ${inclusion.leaf_index} of that tree`);
  return { record, leafIndex: inclusion.leaf_index, head };
}

// {record, leafIndex, latest, steps} if the file holds; throws Invalid (or a ProofError) saying why not.
export async function verifyFile(bytes, log) {
  const steps = [];
  const key = await importPublicKey(await log.publicKey());
  const latest = await checkTreeHead(canonicalJson(await log.treeHead(), "the log's tree head"), key, "the log's tree head");
  steps.push(`the log's newest tree head (size ${latest.treeSize}, ${latest.timestamp}) is signed by the log`);
  const document = canonicalJson(bytes, "the file");
  if (isObject(document) && document.format === BUNDLE_FORMAT) {
    const { record, leafIndex, head } = await checkBundle(document, key, steps);
    if (head.treeSize > latest.treeSize) {
      throw new Invalid(`the bundle's tree head (size ${head.treeSize}) is ahead of this log (size ${latest.treeSize}): it is not this log's`);
    }
    const proof = head.treeSize === latest.treeSize ? [] : await log.consistency(head.treeSize, latest.treeSize);
    await verifyConsistency(head.treeSize, latest.treeSize, head.root, latest.root, proof.map(hexHash));
    steps.push(`the tree of size ${head.treeSize} is a prefix of the log's newest (size ${latest.treeSize})`);
    return { record, leafIndex, latest, steps };
  }
  const record = await checkRecord(bytes, key, steps);
  const proof = await log.inclusion(hex(await sha256(bytes)), latest.treeSize);
  if (proof === null) {
    throw new Invalid(`the record is not in the log's tree of size ${latest.treeSize}`);
  }
  const path = (proof.audit_path || []).map(hexHash);
  await verifyInclusion(await leafHash(bytes), proof.leaf_index, latest.treeSize, path, latest.root);
  steps.push(`the record is leaf ${proof.leaf_index} of the log's newest tree`);
  return { record, leafIndex: proof.leaf_index, latest, steps };
}
