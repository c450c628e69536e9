// The Record tab: the current signed tree head of the log, verified in the browser.
// The signature is Ed25519 over the UTF-8 bytes of the canonical JSON of
// {"root", "size", "timestamp"} (keys sorted, no whitespace), checked with WebCrypto, or
// with the vendored @noble/ed25519 where the browser lacks Ed25519.

import { get } from "./api.js";
import { fmtTime, h, replace } from "./dom.js";
import { on } from "./state.js";

const REFRESH_MS = 15000;

/** RFC 8785 canonical JSON for the plain values of a tree head. */
export function canonicalJson(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
}

function base64ToBytes(b64) {
  const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Verify a tree head's signature. Returns {ok, method}. `ok` is false for a bad signature;
 * an exception means it could not be checked at all.
 */
export async function verifyTreeHead(head, publicKeyB64) {
  const message = new TextEncoder().encode(
    canonicalJson({ root: head.root, size: head.size, timestamp: head.timestamp }),
  );
  const signature = base64ToBytes(head.signature);
  const publicKey = base64ToBytes(publicKeyB64);
  let key;
  try {
    key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (err) {
    if (err && err.name === "NotSupportedError") {
      // This browser has no Ed25519 in WebCrypto: use the vendored pure-JS verifier.
      const ed = await import("/static/vendor/noble-ed25519/index.js");
      return { ok: await ed.verifyAsync(signature, message, publicKey), method: "@noble/ed25519" };
    }
    return { ok: false, method: `WebCrypto: the public key was refused (${err.message})` };
  }
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  return { ok, method: "WebCrypto" };
}

export async function publicKeyFingerprint(publicKeyB64) {
  const digest = await crypto.subtle.digest("SHA-256", base64ToBytes(publicKeyB64));
  return hex(new Uint8Array(digest))
    .slice(0, 16)
    .replace(/(.{4})(?=.)/g, "$1 ");
}

export function mountRecord(panel) {
  const status = h("div", { class: "verify", id: "record-verify" });
  const facts = h("dl", { class: "facts facts-wide", id: "record-head" });
  const refresh = h("button", { type: "button", class: "btn btn-small" }, "Refresh");
  const receipts = h("ul", { class: "receipts", id: "record-receipts" });
  const myReceipts = [];
  let timer = null;
  let visible = false;

  replace(
    panel,
    h(
      "div",
      { class: "panel-body" },
      h(
        "p",
        { class: "muted" },
        "Every accepted change is appended to a tamper-evident log. Its current state is the signed tree head below; this page checks the signature itself, with the log's public key.",
      ),
      status,
      facts,
      h("div", { class: "btn-row" }, refresh),
      h("h3", { class: "subhead" }, "Your receipts in this session"),
      h(
        "p",
        { class: "muted" },
        "Each write returns its log index and a signed head; keep them to prove later what you declared or acknowledged.",
      ),
      receipts,
    ),
  );

  async function load() {
    replace(status, h("span", { class: "muted" }, "Checking…"));
    let head;
    let key;
    try {
      [head, key] = await Promise.all([get("/v1/log/head"), get("/v1/log/public-key")]);
    } catch (err) {
      replace(
        status,
        h("span", { class: "verify-bad" }, `Could not read the record: ${err.message}`),
      );
      return;
    }
    let result;
    try {
      result = await verifyTreeHead(head, key.public_key);
    } catch (err) {
      result = { ok: false, method: `not checked (${err.message})` };
    }
    const fingerprint = await publicKeyFingerprint(key.public_key).catch(() => "?");
    replace(
      status,
      result.ok
        ? h("span", { class: "verify-ok", id: "verify-result" }, "Signature verified ✓")
        : h("span", { class: "verify-bad", id: "verify-result" }, "Signature NOT verified ✗"),
      h("span", { class: "muted" }, ` (Ed25519, ${result.method})`),
    );
    replace(
      facts,
      h("dt", {}, "Entries"),
      h("dd", { id: "record-size" }, String(head.size)),
      h("dt", {}, "Root"),
      h("dd", {}, h("code", { class: "mono wrap", id: "record-root" }, head.root)),
      h("dt", {}, "Signed at"),
      h("dd", {}, fmtTime(head.timestamp)),
      h("dt", {}, "Signature"),
      h("dd", {}, h("code", { class: "mono wrap small" }, head.signature)),
      h("dt", {}, "Public key"),
      h(
        "dd",
        {},
        h("code", { class: "mono wrap small" }, key.public_key),
        h("div", { class: "muted" }, `SHA-256 fingerprint ${fingerprint}`),
      ),
    );
  }

  function drawReceipts() {
    if (!myReceipts.length) {
      replace(receipts, h("li", { class: "muted" }, "None yet."));
      return;
    }
    replace(
      receipts,
      [...myReceipts]
        .reverse()
        .map((r) =>
          h(
            "li",
            {},
            h("div", {}, r.what),
            h(
              "div",
              { class: "muted" },
              `entry #${r.receipt.index} · tree size ${r.receipt.tree_head ? r.receipt.tree_head.size : "?"}`,
            ),
            h("code", { class: "mono wrap small" }, r.receipt.leaf_hash || ""),
          ),
        ),
    );
  }

  refresh.addEventListener("click", load);
  on("receipt", (r) => {
    if (r && r.receipt) {
      myReceipts.push(r);
      drawReceipts();
    }
  });
  on("tab", (tab) => {
    visible = tab === "record";
    clearInterval(timer);
    if (visible) {
      load();
      timer = setInterval(load, REFRESH_MS);
    }
  });
  on("logout", () => {
    clearInterval(timer);
    myReceipts.length = 0;
  });
  drawReceipts();
}
