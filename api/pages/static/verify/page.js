// The verification page: a dropped or chosen file is read and checked here (record.js); only
// pilotlab's public key, newest tree head and proofs are fetched, from this same server.
import { REPORT_FORMAT, verifyFile } from "./record.js";

async function fetched(path, how) {
  const answer = await fetch(path, { credentials: "omit", cache: "no-store" });
  if (how === "json-or-null" && answer.status === 404) {
    return null;
  }
  if (!answer.ok) {
    throw new Error(`${path} answered ${answer.status}`);
  }
  if (how === "bytes") {
    return new Uint8Array(await answer.arrayBuffer());
  }
  return how === "text" ? answer.text() : answer.json();
}

const log = {
  publicKey: () => fetched("/records/public-key", "text"),
  treeHead: () => fetched("/log/tree-head", "bytes"),
  consistency: async (first, second) => (await fetched(`/log/consistency?first=${first}&second=${second}`, "json")).proof,
  inclusion: (recordId, treeSize) => fetched(`/records/${recordId}/inclusion?tree_size=${treeSize}`, "json-or-null"),
};

const result = document.getElementById("result");

// A record's moment in its pilot's time zone (the record names it), e.g. "2026-03-02 09:00 GMT+9 (Asia/Seoul)".
function when(iso, zone) {
  const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
  try {
    return `${new Intl.DateTimeFormat("sv-SE", { ...options, timeZone: zone || "UTC" }).format(new Date(iso))} (${zone || "UTC"})`;
  } catch {
    return `${iso} (UTC)`;
  }
}

function show(valid, title, lines) {
  result.hidden = false;
  result.dataset.valid = String(valid);
  result.className = valid ? "result valid" : "result invalid";
  result.replaceChildren();
  const heading = document.createElement("h2");
  heading.textContent = title;
  const list = document.createElement("ul");
  for (const line of lines) {
    const item = document.createElement("li");
    item.textContent = line;
    list.append(item);
  }
  result.append(heading, list);
}

async function check(file) {
  result.hidden = false;
  result.dataset.valid = "";
  result.className = "result";
  result.textContent = `Checking ${file.name} …`;
  try {
    const outcome = await verifyFile(new Uint8Array(await file.arrayBuffer()), log);
    const r = outcome.record;
    const about = r.format === REPORT_FORMAT ? [
      `Conformance report of device ${r.device?.id ?? "?"} (pilot ${r.device?.pilot ?? "?"}, firm ${r.device?.firm ?? "?"}): ${r.passed ? "passed" : `failed: ${(r.summary?.fail ?? []).join(", ")}`}`,
      `Run ${when(r.run?.start)} → ${when(r.run?.end)}; issued ${when(r.issued_at)}`,
    ] : [
      `Pilot ${r.pilot?.name ?? ""} (${r.pilot?.id ?? "?"}) of ${r.firm?.name ?? "?"}: verdict ${r.verdict}, score ${r.score}`,
      `Window ${when(r.window?.start, r.pilot?.timezone)} → ${when(r.window?.end, r.pilot?.timezone)}; issued ${when(r.issued_at, r.pilot?.timezone)}`,
    ];
    show(true, `Valid: ${file.name}`, [...about, ...outcome.steps.map((step) => `✓ ${step}`)]);
  } catch (error) {
    show(false, `Not valid: ${file.name}`, [error.message]);
  }
}

if (!window.isSecureContext || !crypto.subtle) {
  show(false, "This page needs a secure context", [
    "The browser checks signatures with WebCrypto, which it offers only over https or on this computer (127.0.0.1, localhost).",
  ]);
}

const input = document.getElementById("file");
input.addEventListener("change", () => input.files.length && check(input.files[0]));
const zone = document.getElementById("drop");
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  if (event.dataTransfer.files.length) {
    check(event.dataTransfer.files[0]);
  }
});
