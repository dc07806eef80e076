// RFC 8785 (JSON Canonicalization Scheme), as scoring.records signs with (Python's rfc8785).
// Written for pilotlab rather than vendored: the scheme is ECMAScript's own JSON serialisation
// with sorted keys, so a few lines say it all, and tests/web/test_verify_page.py holds this file
// to the Python implementation on the values where the two could part (number forms, key order
// by UTF-16 code units, escapes, non-ASCII text).

export function canonicalize(value) {
  if (value === null || typeof value === "boolean") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      throw new Error(`RFC 8785 has no form for ${value}`);
    }
    return JSON.stringify(value); // ECMAScript's Number-to-String, which RFC 8785 §3.2.2.3 adopts (-0 is "0")
  }
  if (typeof value === "string") {
    return string(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(canonicalize).join(",")}]`;
  }
  if (typeof value === "object") {
    // Array.prototype.sort compares UTF-16 code units, the order RFC 8785 §3.2.3 asks for
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${string(key)}:${canonicalize(value[key])}`).join(",")}}`;
  }
  throw new Error(`not a JSON value: ${typeof value}`);
}

function string(text) {
  if (!text.isWellFormed()) {
    throw new Error("a string holds a lone surrogate, which RFC 8785 cannot encode");
  }
  return JSON.stringify(text); // the short escapes, \u00xx for other controls, the rest as is (§3.2.2.2)
}

export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalize(value));
}
