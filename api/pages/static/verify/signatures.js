// Ed25519 with WebCrypto: the server's public key (PEM, SubjectPublicKeyInfo) and its ids as
// scoring.signing and scoring.transparency.tree_head name them (key id: the first 16 hex digits
// of SHA-256 over the raw key; log id: all 64).
import { fromBase64, hex, sha256 } from "./bytes.js";

export async function importPublicKey(pem) {
  const der = fromBase64(pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, ""));
  if (der === null) {
    throw new Error("the server's public key is not a PEM public key");
  }
  const key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, true, ["verify"]);
  const digest = hex(await sha256(new Uint8Array(await crypto.subtle.exportKey("raw", key))));
  return { key, keyId: digest.slice(0, 16), logId: digest };
}

// Does the base64 `signature` sign `data` with `publicKey`? (false for one that is not base64)
export async function signs(publicKey, signature, data) {
  const raw = fromBase64(signature);
  return raw !== null && crypto.subtle.verify({ name: "Ed25519" }, publicKey.key, raw, data);
}
