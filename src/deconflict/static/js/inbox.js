// The Inbox tab: notifications received (each with an Acknowledge button) and, for the
// owner of declarations, who received and acknowledged the notifications about them.
//
// The inbox is polled (GET /v1/inbox?after=SEQ) rather than streamed: EventSource cannot
// send an Authorization header, and the token must not travel in a URL.

import { alertCard, isAlert } from "./alerts.js";
import { get, mapLimit } from "./api.js";
import { conflictItem, deliveriesTable, kindChip } from "./declarations.js";
import { fmtTime, h, replace, toast } from "./dom.js";
import { drawAnswer } from "./respond.js";
import {
  declTitle,
  emit,
  fetchDecl,
  findDecl,
  isMine,
  KIND_LABEL,
  loadDeclarations,
  on,
  partyName,
  select,
  state,
} from "./state.js";

const POLL_MS = 5000;
const CHANGE = { created: "New", updated: "Changed", withdrawn: "Withdrawn" };
const REASON = {
  conflict: "conflicts with yours",
  subscription: "in your area of interest",
  broadcast: "sent to all",
};

let pollTimer = null;
let stopped = true;

/** Fetch everything after the last sequence number; returns how many were new. */
export async function pollInbox() {
  let fresh = 0;
  for (let pages = 0; pages < 50; pages++) {
    const data = await get(`/v1/inbox?after=${state.lastSeq}&limit=200`);
    const list = data.notifications || [];
    for (const n of list) {
      if (!state.notifications.has(n.id)) fresh += 1;
      state.notifications.set(n.id, n);
      if (typeof n.seq === "number") state.lastSeq = Math.max(state.lastSeq, n.seq);
    }
    if (typeof data.last_seq === "number") state.lastSeq = Math.max(state.lastSeq, data.last_seq);
    if (list.length < 200) break;
  }
  if (fresh) emit("inbox", { fresh });
  return fresh;
}

export function startPolling() {
  stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      const fresh = await pollInbox();
      if (fresh && state.loadedAt !== null) {
        toast(`${fresh} new notification${fresh > 1 ? "s" : ""}`);
        // Something changed that concerns this party: refresh the picture.
        loadDeclarations().catch(() => {});
      }
    } catch (err) {
      if (err.status === 401) return;
    }
    if (!stopped) pollTimer = setTimeout(tick, POLL_MS);
  };
  pollTimer = setTimeout(tick, POLL_MS);
}

export function stopPolling() {
  stopped = true;
  clearTimeout(pollTimer);
}

export function unacknowledgedCount() {
  let n = 0;
  for (const x of state.notifications.values()) if (!x.acknowledged_at) n += 1;
  return n;
}

export function mountInbox(panel) {
  let view = "received";
  let onlyOpen = false;
  const switcher = h("div", { class: "segmented", role: "group" });
  const head = h("div", { class: "panel-head" }, switcher);
  const body = h("div", { class: "panel-body" });
  replace(panel, head, body);

  function drawSwitcher() {
    const canDeclare = state.me && state.me.role !== "observer";
    const btn = (id, label) =>
      h(
        "button",
        {
          type: "button",
          class: `seg${view === id ? " is-on" : ""}`,
          "aria-pressed": view === id ? "true" : "false",
          id: `inbox-view-${id}`,
          onclick: () => {
            view = id;
            draw();
          },
        },
        label,
      );
    replace(
      switcher,
      btn("received", "Received"),
      canDeclare ? btn("sent", "Acknowledgments") : null,
    );
  }

  function draw() {
    drawSwitcher();
    if (view === "received") drawReceived();
    else drawSent();
  }

  function drawReceived() {
    const all = [...state.notifications.values()].sort((a, b) => (b.seq || 0) - (a.seq || 0));
    const open = all.filter((n) => !n.acknowledged_at);
    const shown = onlyOpen ? open : all;
    const toggle = h("input", { type: "checkbox", id: "inbox-open-only", checked: onlyOpen });
    toggle.addEventListener("change", () => {
      onlyOpen = toggle.checked;
      draw();
    });
    replace(
      body,
      h(
        "div",
        { class: "filter-row" },
        h("label", { class: "check", for: "inbox-open-only" }, toggle, "Unacknowledged only"),
        h(
          "span",
          { class: "list-summary" },
          `${all.length} notifications · ${open.length} to acknowledge`,
        ),
      ),
      shown.length
        ? h("ul", { class: "inbox-list", id: "inbox-list" }, shown.map(card))
        : h("p", { class: "empty" }, onlyOpen ? "All acknowledged." : "No notifications yet."),
    );
  }

  function card(n) {
    if (isAlert(n)) return alertCard(n);
    const ref = n.declaration || {};
    const decl = findDecl(ref.id);
    const title = h("span", {}, decl ? declTitle(decl) : `${KIND_LABEL[ref.kind] || ref.kind}`);
    if (!decl && ref.id) {
      fetchDecl(ref.id)
        .then((d) => {
          title.textContent = declTitle(d);
        })
        .catch(() => {});
    }
    const ackArea = h("div", { class: "ack-area" });
    drawAck(n, ackArea);
    return h(
      "li",
      {
        class: `note${n.acknowledged_at ? " is-acked" : ""}`,
        dataset: { notificationId: n.id, declId: ref.id },
      },
      h(
        "div",
        { class: "note-top" },
        h("span", { class: `change change-${n.change}` }, CHANGE[n.change] || n.change),
        kindChip(ref.kind),
        h("span", { class: `badge badge-reason reason-${n.reason}` }, REASON[n.reason] || n.reason),
        n.late_notice ? h("span", { class: "badge badge-late" }, "late notice") : null,
      ),
      h(
        "button",
        {
          type: "button",
          class: "link note-title",
          title: "Show on the map",
          onclick: () => {
            select(ref.id);
            emit("focus", [ref.id]);
          },
        },
        title,
      ),
      h(
        "div",
        { class: "muted" },
        `from ${partyName(ref.owner)} · version `,
        h("code", {}, ref.version),
      ),
      (n.conflicts || []).length
        ? h(
            "div",
            { class: "note-conflicts" },
            h("div", { class: "note-label" }, `Conflicts (${n.conflicts.length})`),
            h("ul", { class: "conflicts" }, n.conflicts.map(conflictItem)),
          )
        : null,
      h(
        "div",
        { class: "note-times muted" },
        `Sent ${fmtTime(n.created_at)} · delivered ${fmtTime(n.delivered_at)}`,
      ),
      ackArea,
    );
  }

  function drawAck(n, area) {
    drawAnswer(n, area);
  }

  async function drawSent() {
    const mine = [...state.decls.values()].filter(isMine);
    if (!body.querySelector(".sent-list")) {
      replace(body, h("p", { class: "muted" }, "Loading acknowledgments…"));
    }
    const [overdue, results] = await Promise.all([
      get("/v1/notifications/overdue")
        .then((data) => data.overdue || [])
        .catch(() => null),
      mapLimit(mine, 4, async (d) => {
        try {
          const data = await get(`/v1/declarations/${encodeURIComponent(d.id)}/deliveries`);
          return data.deliveries || [];
        } catch {
          return null;
        }
      }),
    ]);
    if (view !== "sent") return;
    replace(
      body,
      overdue && overdue.length ? overdueBox(overdue) : null,
      h(
        "p",
        { class: "muted" },
        "Who received the notifications about your declarations, and who acknowledged them.",
      ),
      mine.length
        ? h(
            "ul",
            { class: "sent-list" },
            mine.map((d, i) =>
              h(
                "li",
                { class: "sent", dataset: { declId: d.id } },
                h(
                  "button",
                  {
                    type: "button",
                    class: "link note-title",
                    onclick: () => {
                      select(d.id);
                      emit("focus", [d.id]);
                    },
                  },
                  kindChip(d.kind),
                  " ",
                  declTitle(d),
                ),
                results[i] === null
                  ? h("p", { class: "form-error" }, "Could not load deliveries.")
                  : deliveriesTable(results[i]),
              ),
            ),
          )
        : h("p", { class: "empty" }, "You have no active declarations."),
    );
  }

  /** Acknowledgments past the policy's deadline: the caller's, or all for the coordinator. */
  function overdueBox(overdue) {
    const everyone = state.me && state.me.role === "coordinator";
    return h(
      "div",
      { class: "overdue-box", id: "overdue-box", role: "status" },
      h(
        "h3",
        {},
        `${overdue.length} overdue acknowledgment${overdue.length > 1 ? "s" : ""}${
          everyone ? " (all parties)" : ""
        }`,
      ),
      h(
        "ul",
        {},
        overdue.map((o) => {
          const ref = o.declaration || {};
          const decl = findDecl(ref.id);
          return h(
            "li",
            { dataset: { party: o.party, declId: ref.id } },
            h("strong", {}, partyName(o.party)),
            " has not acknowledged ",
            h(
              "button",
              {
                type: "button",
                class: "link",
                onclick: () => {
                  select(ref.id);
                  emit("focus", [ref.id]);
                },
              },
              decl ? declTitle(decl) : `${KIND_LABEL[ref.kind] || ref.kind}`,
            ),
            everyone && ref.owner ? ` of ${partyName(ref.owner)}` : "",
            h("span", { class: "muted" }, ` · due ${fmtTime(o.due_at)}`),
          );
        }),
      ),
    );
  }

  on("inbox", () => {
    if (view === "received") draw();
  });
  on("decls", () => draw());
  on("parties", () => {
    if (view === "received") draw();
  });
  on("tab", (tab) => {
    if (tab === "inbox") draw();
  });
  draw();
}
