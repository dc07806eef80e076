// Bytes, hex, base64 and SHA-256 (WebCrypto) for the record checks.

export function equal(a, b) {
  if (a.length !== b.length) {
    return false;
  }
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) {
    diff |= a[i] ^ b[i];
  }
  return diff === 0;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A 32-byte hash spelled in lower-case hex (the one spelling records use), else null.
export function hexHash(text) {
  if (typeof text !== "string" || !/^[0-9a-f]{64}$/.test(text)) {
    return null;
  }
  return Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
}

// Strict base64 (as Python's b64decode(validate=True)); null if it is not.
export function fromBase64(text) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    return null;
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
