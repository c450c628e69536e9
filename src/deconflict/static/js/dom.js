// Small DOM helpers. Every string from the API goes through textContent (never innerHTML),
// so a declaration named "<img onerror=…>" is shown as text, not run.

/**
 * Create an element. `attrs` keys: "class", "dataset" (object), "on<event>" (listener),
 * boolean attributes (true/false), anything else via setAttribute. Children may be
 * strings (as text), nodes, arrays, or null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const dateFmt = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  day: "2-digit",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
const shortFmt = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  weekday: "short",
  day: "2-digit",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** "14 Jan 2025, 10:00 UTC" from an RFC 3339 string or epoch ms; "—" for null. */
export function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "—";
  const d = typeof value === "number" ? new Date(value) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${dateFmt.format(d)} UTC`;
}

/** "Tue 14 Jan, 10:00 UTC" — for the timeline. */
export function fmtTimeShort(ms) {
  return `${shortFmt.format(new Date(ms))} UTC`;
}

/** A time window "start → end" where a null end reads "until withdrawn". */
export function fmtWindow(start, end) {
  return `${fmtTime(start)} → ${end ? fmtTime(end) : "until withdrawn"}`;
}

const dayFmt = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  day: "2-digit",
  month: "short",
});
const hmFmt = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** A compact window: "22 Nov 10:00–13:00 UTC", "22 Nov 10:00 → 23 Nov 14:00 UTC". */
export function fmtWindowShort(start, end) {
  const s = new Date(start);
  if (Number.isNaN(s.getTime())) return fmtWindow(start, end);
  const from = `${dayFmt.format(s)} ${hmFmt.format(s)}`;
  if (!end) return `from ${from} UTC, until withdrawn`;
  const e = new Date(end);
  if (dayFmt.format(s) === dayFmt.format(e) && e - s < 86400000) {
    return `${from}–${hmFmt.format(e)} UTC`;
  }
  return `${from} → ${dayFmt.format(e)} ${hmFmt.format(e)} UTC`;
}

/** An altitude band in metres AMSL; null bounds are unbounded. */
export function fmtAltitude(alt) {
  const lower = alt ? alt.lower_m : null;
  const upper = alt ? alt.upper_m : null;
  if ((lower === null || lower === undefined) && (upper === null || upper === undefined)) {
    return "any altitude";
  }
  const lo = lower === null || lower === undefined ? "unbounded" : `${fmtNumber(lower)} m`;
  const hi = upper === null || upper === undefined ? "unbounded" : `${fmtNumber(upper)} m`;
  return `${lo} – ${hi} AMSL`;
}

export function fmtNumber(n) {
  return Number(n).toLocaleString("en-GB", { maximumFractionDigits: 1 });
}

/** Metres as "850 m" or "12.4 km". */
export function fmtDistance(m) {
  if (m === null || m === undefined) return "—";
  if (m < 1000) return `${Math.round(m)} m`;
  return `${(m / 1000).toLocaleString("en-GB", { maximumFractionDigits: 1 })} km`;
}

export function parseTime(value) {
  if (value === null || value === undefined) return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

/** A short, readable form of a long opaque identifier. */
export function shortId(id) {
  const s = String(id ?? "");
  return s.length > 12 ? `${s.slice(0, 8)}…` : s;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

let toastTimer = null;
/** A transient message at the bottom of the map. */
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.className = `toast toast-${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 4000);
}
