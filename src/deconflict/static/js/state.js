// What the page knows, and the events that tell each panel to redraw.

import { get, mapLimit } from "./api.js";
import { parseTime } from "./dom.js";

export const KINDS = ["operation", "site", "movement", "restriction"];

export const KIND_LABEL = {
  operation: "Operation",
  site: "Site",
  movement: "Movement",
  restriction: "Restricted area",
};

export const KIND_PLURAL = {
  operation: "Operations",
  site: "Sites",
  movement: "Movements",
  restriction: "Restricted areas",
};

/** Which kinds each role may declare (API.md "by role"). */
export const DECLARABLE = {
  operator: ["operation"],
  humanitarian: ["site", "movement"],
  coordinator: ["restriction"],
  observer: [],
};

export const state = {
  me: null, // {id, name, role}
  parties: new Map(), // id -> {id, name, role}
  decls: new Map(), // id -> Declaration (active, visible)
  conflicts: new Map(), // id -> [Conflict]
  extra: new Map(), // id -> Declaration fetched on demand (e.g. withdrawn, from the inbox)
  selectedId: null,
  time: Date.now(), // epoch ms of the timeline cursor
  showAll: true, // true: everything drawn alike; false: only what is active at `time`
  span: { start: Date.now() - 86400000, end: Date.now() + 3 * 86400000 },
  highlight: new Set(), // ids to call out (e.g. missed by an awareness key)
  notifications: new Map(), // id -> Notification
  lastSeq: 0,
  tileUrl: null,
  loadedAt: null,
  // The policy's protected kinds (GET /v1/policy: protection.kinds); the default until read.
  protectedKinds: new Set(["site", "movement"]),
};

const listeners = new Map();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, []);
  listeners.get(event).push(fn);
}

export function emit(event, payload) {
  for (const fn of listeners.get(event) || []) {
    try {
      fn(payload);
    } catch (err) {
      console.error(`listener for ${event} failed`, err);
    }
  }
}

export function reset() {
  state.me = null;
  state.parties.clear();
  state.decls.clear();
  state.conflicts.clear();
  state.extra.clear();
  state.selectedId = null;
  state.highlight.clear();
  state.notifications.clear();
  state.lastSeq = 0;
}

// ---- descriptions -------------------------------------------------------------------

export function partyName(id) {
  const p = state.parties.get(id);
  if (p) return p.name;
  if (state.me && id === state.me.id) return state.me.name;
  return `party ${String(id).slice(0, 8)}`;
}

export function findDecl(id) {
  return state.decls.get(id) || state.extra.get(id) || null;
}

/** The human name of a declaration: metadata.name if any, else category and kind. */
export function declTitle(decl) {
  const md = decl && decl.metadata;
  if (md && typeof md === "object") {
    for (const key of ["name", "title", "label", "callsign"]) {
      if (typeof md[key] === "string" && md[key].trim()) return md[key].trim();
    }
  }
  if (!decl) return "unknown declaration";
  const cat = decl.category ? `${decl.category} ` : "";
  return `${cat}${(KIND_LABEL[decl.kind] || decl.kind).toLowerCase()}`;
}

/** "the hospital “Al-Amal” of Meridian Relief", "the operation “ECW-06” of …" — for sentences. */
export function declPhrase(decl, ref = null) {
  const d = decl || ref;
  const kind = (KIND_LABEL[d.kind] || d.kind).toLowerCase();
  // A site or a movement is best called by its category (hospital, convoy); an operation's
  // category (strike, training) reads oddly as a noun.
  const byCategory = (d.kind === "site" || d.kind === "movement") && decl && decl.category;
  const what = byCategory ? decl.category.replace(/[-_]+/g, " ") : kind;
  const owner = partyName(d.owner);
  const md = decl && decl.metadata;
  const name = md && typeof md.name === "string" && md.name.trim() ? md.name.trim() : null;
  return name ? `the ${what} “${name}” of ${owner}` : `a ${what} of ${owner}`;
}

export function isMine(decl) {
  return Boolean(state.me && decl && decl.owner === state.me.id);
}

// ---- time ---------------------------------------------------------------------------

/** Whether any volume of the declaration is active at `t` (ms). End is exclusive. */
export function activeAt(decl, t) {
  return (decl.volumes || []).some((v) => volumeActiveAt(v, t));
}

export function volumeActiveAt(volume, t) {
  const start = parseTime(volume.time && volume.time.start);
  const end = parseTime(volume.time && volume.time.end);
  return (start === null || start <= t) && (end === null || t < end);
}

/** Whether a conflict's overlap window contains `t`. */
export function conflictAt(conflict, t) {
  const o = conflict.time_overlap;
  if (!o) return true;
  const start = parseTime(o.start);
  const end = parseTime(o.end);
  return (start === null || start <= t) && (end === null || t < end);
}

/** The conflicts of a declaration that matter now: all, or those overlapping the cursor. */
export function currentConflicts(id) {
  const list = state.conflicts.get(id) || [];
  if (state.showAll) return list;
  return list.filter((c) => conflictAt(c, state.time));
}

export function isEmphasised(decl) {
  return state.showAll || activeAt(decl, state.time);
}

/**
 * The span of the timeline: from the earliest to the latest instant of the windows that
 * end. Open-ended volumes (a hospital "from last month, until withdrawn") are there at
 * every instant and would stretch the scale over empty weeks, so they count only when
 * nothing else does. Now is always inside.
 */
function computeSpan() {
  const now = Date.now();
  const hour = 3600000;
  let lo = Infinity;
  let hi = -Infinity;
  let openLo = Infinity;
  for (const d of state.decls.values()) {
    for (const v of d.volumes || []) {
      const s = parseTime(v.time && v.time.start);
      const e = parseTime(v.time && v.time.end);
      if (s === null) continue;
      if (e === null) {
        openLo = Math.min(openLo, s);
        continue;
      }
      lo = Math.min(lo, s);
      hi = Math.max(hi, e);
    }
  }
  if (!Number.isFinite(lo)) {
    lo = Number.isFinite(openLo) ? Math.max(openLo, now - 3 * 86400000) : now - 86400000;
    hi = now + 3 * 86400000;
  }
  lo = Math.min(lo, now);
  hi = Math.max(hi, now + hour);
  return { start: Math.floor(lo / hour) * hour, end: Math.ceil(hi / hour) * hour };
}

// ---- loading ------------------------------------------------------------------------

export async function loadParties() {
  const data = await get("/v1/parties");
  state.parties.clear();
  for (const p of data.parties || []) state.parties.set(p.id, p);
  emit("parties");
}

let loading = null;

/** Fetch every visible active declaration and each one's current conflicts. */
export function loadDeclarations() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const data = await get("/v1/declarations");
      const decls = data.declarations || [];
      const conflicts = await mapLimit(decls, 6, async (d) => {
        try {
          const c = await get(`/v1/declarations/${encodeURIComponent(d.id)}/conflicts`);
          return c.conflicts || [];
        } catch {
          return state.conflicts.get(d.id) || [];
        }
      });
      state.decls = new Map(decls.map((d) => [d.id, d]));
      state.conflicts = new Map(decls.map((d, i) => [d.id, conflicts[i]]));
      const firstLoad = state.loadedAt === null;
      state.span = computeSpan();
      if (firstLoad) {
        state.time = Math.min(Math.max(Date.now(), state.span.start), state.span.end);
      } else {
        state.time = Math.min(Math.max(state.time, state.span.start), state.span.end);
      }
      state.loadedAt = Date.now();
      emit("decls", { firstLoad });
    } finally {
      loading = null;
    }
  })();
  return loading;
}

/** A declaration by id, from what is loaded or from the API (e.g. a withdrawn one). */
export async function fetchDecl(id) {
  const known = findDecl(id);
  if (known) return known;
  const data = await get(`/v1/declarations/${encodeURIComponent(id)}`);
  state.extra.set(id, data.declaration);
  return data.declaration;
}

export function select(id) {
  state.selectedId = id;
  emit("select", id);
}

export function setTime(ms, { showAll = false } = {}) {
  state.time = ms;
  state.showAll = showAll;
  emit("time");
}

export function setShowAll(value) {
  state.showAll = value;
  emit("time");
}

export function setHighlight(ids) {
  state.highlight = new Set(ids);
  emit("highlight");
}

// ---- protection and escalation ------------------------------------------------------

/** Read which kinds the policy protects; the default stays when it cannot be read. */
export async function loadPolicy() {
  try {
    const data = await get("/v1/policy");
    const kinds = data && data.policy && data.policy.protection && data.policy.protection.kinds;
    if (Array.isArray(kinds)) state.protectedKinds = new Set(kinds);
  } catch {
    // Keep the default: showing a site as protected is the safe mistake.
  }
  emit("policy");
}

export function isProtectedKind(kind) {
  return state.protectedKinds.has(kind);
}

/** The declaration a notification alerts about: the protected one, for a protection alert. */
export function isProtectionAlert(n) {
  return n.reason === "protection" && Boolean(n.protection);
}

export function isOverdueAlert(n) {
  return n.reason === "overdue" && Boolean(n.overdue);
}

/** The protection alerts (from this party's inbox) about declaration `id`, newest first. */
export function protectionAlertsFor(id) {
  return [...state.notifications.values()]
    .filter((n) => isProtectionAlert(n) && n.protection.declaration && n.protection.declaration.id === id)
    .sort(newestFirst);
}

/** Protection and overdue alerts in this party's inbox: unacknowledged first, then newest. */
export function alerts() {
  return [...state.notifications.values()]
    .filter((n) => isProtectionAlert(n) || isOverdueAlert(n))
    .sort((a, b) => Number(Boolean(a.acknowledged_at)) - Number(Boolean(b.acknowledged_at)) || newestFirst(a, b));
}

function newestFirst(a, b) {
  return (b.seq || 0) - (a.seq || 0) || String(b.created_at).localeCompare(String(a.created_at));
}
