// Alerts: protection alerts (an operation conflicts with a protected site or movement) and
// overdue escalations (an acknowledgment past its deadline), in plain words, and the Alerts
// tab that lists them, unanswered first.
//
// What a protection alert says depends on what the policy lets this party know: the
// protected owner is by default told when and how close, never whose operation or where it
// is ("redacted": `protection.operation` is null); the coordinator is told everything.

import { fmtDistance, fmtTime, fmtWindowShort, h, replace } from "./dom.js";
import { drawAnswer } from "./respond.js";
import {
  alerts,
  declTitle,
  emit,
  fetchDecl,
  findDecl,
  isMine,
  isOverdueAlert,
  isProtectionAlert,
  KIND_LABEL,
  on,
  partyName,
  select,
  state,
} from "./state.js";

/** "within 850 m of" or, at no distance at all, "over". */
function howClose(m) {
  return Number(m) > 0 ? `within ${fmtDistance(m)} of` : "over";
}

function overlapText(p) {
  const o = p.time_overlap;
  return o ? fmtWindowShort(o.start, o.end) : "at a time that overlaps yours";
}

/** A declaration's name as text that fills in once fetched (for ids not loaded yet). */
function nameOf(ref, fallback) {
  const span = h("span", { class: "alert-name" }, fallback);
  if (!ref || !ref.id) return span;
  const known = findDecl(ref.id);
  if (known) {
    span.textContent = declTitle(known);
    return span;
  }
  fetchDecl(ref.id)
    .then((d) => {
      span.textContent = declTitle(d);
    })
    .catch(() => {});
  return span;
}

function protectedPhrase(ref) {
  const what = (KIND_LABEL[ref.kind] || ref.kind || "declaration").toLowerCase();
  const decl = findDecl(ref.id);
  const label = decl && decl.category ? decl.category.replace(/[-_]+/g, " ") : what;
  const whose = state.me && ref.owner === state.me.id ? "your" : "the";
  return [`${whose} ${label} “`, nameOf(ref, what), "”"];
}

/** The one-line summary the detail panel of the protected declaration shows per alert. */
export function protectionLine(n) {
  const p = n.protection;
  const when = overlapText(p);
  if (n.change === "withdrawn") {
    return `Protection alert: an operation that was planned ${howClose(p.min_distance_m)} it, ${when}, is withdrawn`;
  }
  const verb = n.change === "updated" ? "changed operation" : "operation";
  return `Protection alert: an ${verb} ${howClose(p.min_distance_m)} it, ${when}`;
}

/** What a protection alert means, in a sentence. */
function protectionSentence(n) {
  const p = n.protection;
  const where = [howClose(p.min_distance_m), " ", protectedPhrase(p.declaration || {})];
  const op = p.operation;
  const subject = op
    ? ["The operation “", nameOf(op, "operation"), `” of ${partyName(op.owner)}`]
    : ["An operation"];
  const when = ` at ${overlapText(p)}`;
  if (n.change === "withdrawn") {
    return [...subject, " that was planned ", ...where, when, " has been withdrawn."];
  }
  if (n.change === "updated") {
    return [...subject, " has changed and is now planned ", ...where, when, "."];
  }
  return [...subject, " is planned ", ...where, when, "."];
}

function protectionCard(n) {
  const p = n.protection;
  const redacted = !p.operation;
  const target = p.declaration ? p.declaration.id : null;
  return [
    h(
      "div",
      { class: "note-top" },
      h("span", { class: "badge badge-protection" }, "⚠ Protection alert"),
      h("span", { class: `change change-${n.change}` }, changeWord(n.change)),
      n.late_notice ? h("span", { class: "badge badge-late" }, "late notice") : null,
    ),
    h("p", { class: "alert-text" }, protectionSentence(n)),
    h(
      "dl",
      { class: "facts alert-facts" },
      fact("Distance", Number(p.min_distance_m) > 0 ? fmtDistance(p.min_distance_m) : "0 m (overlapping)"),
      fact("When", overlapText(p)),
      redacted ? null : fact("Operator", partyName(p.operation.owner)),
      redacted ? null : fact("Category", p.category || "—"),
      redacted ? null : fact("Justification", p.justification || "none given"),
      p.declaration && !isMine({ owner: p.declaration.owner })
        ? fact("Protected", [protectedPhrase(p.declaration), ` of ${partyName(p.declaration.owner)}`])
        : null,
    ),
    redacted
      ? h(
          "p",
          { class: "alert-withheld" },
          "Who runs this operation, what it is and where exactly are withheld by policy. " +
            "The coordinator has the operation's details and has been alerted too.",
        )
      : null,
    h(
      "div",
      { class: "btn-row alert-links" },
      target
        ? h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: () => {
                select(target);
                emit("focus", [target]);
              },
            },
            "Show the protected declaration",
          )
        : null,
      p.operation
        ? h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: () => {
                select(p.operation.id);
                emit("focus", [p.operation.id]);
              },
            },
            "Show the operation",
          )
        : null,
    ),
  ];
}

function overdueCard(n) {
  const o = n.overdue;
  const ref = n.declaration || {};
  return [
    h(
      "div",
      { class: "note-top" },
      h("span", { class: "badge badge-overdue-alert" }, "⏰ Overdue acknowledgment"),
    ),
    h(
      "p",
      { class: "alert-text" },
      h("strong", {}, partyName(o.recipient)),
      " has not acknowledged the notification about ",
      ref.id
        ? h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: () => {
                select(ref.id);
                emit("focus", [ref.id]);
              },
            },
            nameOf(ref, (KIND_LABEL[ref.kind] || "a declaration").toLowerCase()),
          )
        : "a declaration",
      ref.owner && !isMine({ owner: ref.owner }) ? ` of ${partyName(ref.owner)}` : "",
      `; it was due ${fmtTime(o.due_at)}.`,
    ),
    h(
      "p",
      { class: "muted small" },
      "Contact them: they may not know about it. Notification ",
      h("code", {}, String(o.notification)),
    ),
  ];
}

function changeWord(change) {
  return { created: "New", updated: "Changed", withdrawn: "Withdrawn" }[change] || change;
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

/** A protection or overdue notification as an inbox card (the `li`), with its answer form. */
export function alertCard(n) {
  const area = h("div", { class: "ack-area" });
  drawAnswer(n, area);
  const protection = isProtectionAlert(n);
  return h(
    "li",
    {
      class: `note alert-note ${protection ? "note-protection" : "note-overdue"}${
        n.acknowledged_at ? " is-acked" : ""
      }`,
      dataset: {
        notificationId: n.id,
        reason: n.reason,
        declId: protection && n.protection.declaration ? n.protection.declaration.id : undefined,
      },
    },
    protection ? protectionCard(n) : overdueCard(n),
    h(
      "div",
      { class: "note-times muted" },
      `Sent ${fmtTime(n.created_at)} · delivered ${fmtTime(n.delivered_at)}`,
    ),
    area,
  );
}

export function isAlert(n) {
  return isProtectionAlert(n) || isOverdueAlert(n);
}

export function unansweredAlertCount() {
  return alerts().filter((n) => !n.acknowledged_at).length;
}

/** The Alerts tab: every protection and overdue alert, unanswered first. */
export function mountAlerts(panel) {
  const body = h("div", { class: "panel-body" });
  replace(panel, body);

  function draw() {
    const all = alerts();
    const open = all.filter((n) => !n.acknowledged_at).length;
    const protection = all.filter(isProtectionAlert).length;
    const overdue = all.length - protection;
    replace(
      body,
      h(
        "p",
        { class: "alerts-lead" },
        state.me && state.me.role === "coordinator"
          ? "Operations that conflict with protected sites and movements, and acknowledgments past their deadline, across every party."
          : "Operations that come close to your protected sites and movements, and acknowledgments of yours that others have not given in time.",
      ),
      h(
        "p",
        { class: "list-summary", id: "alerts-summary" },
        `${all.length} alert${all.length === 1 ? "" : "s"} · ${open} to answer · ${protection} protection · ${overdue} overdue`,
      ),
      all.length
        ? h("ul", { class: "inbox-list alerts-list", id: "alerts-list" }, all.map(alertCard))
        : h("p", { class: "empty" }, "No alerts."),
    );
  }

  on("inbox", draw);
  on("parties", draw);
  on("decls", draw);
  on("tab", (tab) => {
    if (tab === "alerts") draw();
  });
  draw();
}
