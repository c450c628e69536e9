// The Declarations tab (a filterable list) and the detail panel over the map.

import { protectionLine } from "./alerts.js";
import { del, get } from "./api.js";
import {
  fmtAltitude,
  fmtDistance,
  fmtTime,
  fmtWindow,
  fmtWindowShort,
  h,
  replace,
  toast,
} from "./dom.js";
import { isWarningResponse, responseBadge } from "./respond.js";
import {
  activeAt,
  currentConflicts,
  declTitle,
  emit,
  fetchDecl,
  findDecl,
  isEmphasised,
  isMine,
  KIND_LABEL,
  KIND_PLURAL,
  KINDS,
  loadDeclarations,
  on,
  partyName,
  protectionAlertsFor,
  select,
  state,
} from "./state.js";

const filters = { kinds: new Set(), mine: false, conflicts: false, text: "" };

export function kindChip(kind) {
  return h("span", { class: `kind-chip kind-${kind}` }, KIND_LABEL[kind] || kind);
}

export function mountDeclarations(panel, layers) {
  const search = h("input", {
    type: "search",
    class: "input",
    placeholder: "Search name, category, owner",
    "aria-label": "Search declarations",
  });
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Kinds" });
  const mine = h("input", { type: "checkbox", id: "filter-mine" });
  const conflicted = h("input", { type: "checkbox", id: "filter-conflicts" });
  const summary = h("div", { class: "list-summary", id: "decl-summary" });
  const list = h("ul", { class: "decl-list", id: "decl-list" });
  const refresh = h(
    "button",
    { type: "button", class: "btn btn-small", title: "Reload declarations" },
    "Refresh",
  );

  replace(
    panel,
    h(
      "div",
      { class: "panel-head" },
      search,
      chips,
      h(
        "div",
        { class: "filter-row" },
        h("label", { class: "check", for: "filter-mine" }, mine, "Mine only"),
        h("label", { class: "check", for: "filter-conflicts" }, conflicted, "In conflict"),
        refresh,
      ),
      summary,
    ),
    h("div", { class: "panel-body" }, list),
  );

  search.addEventListener("input", () => {
    filters.text = search.value.trim().toLowerCase();
    draw();
  });
  mine.addEventListener("change", () => {
    filters.mine = mine.checked;
    draw();
  });
  conflicted.addEventListener("change", () => {
    filters.conflicts = conflicted.checked;
    draw();
  });
  refresh.addEventListener("click", async () => {
    refresh.disabled = true;
    try {
      await loadDeclarations();
    } catch (err) {
      toast(err.message, "error");
    } finally {
      refresh.disabled = false;
    }
  });

  function drawChips() {
    const present = KINDS.filter((k) => [...state.decls.values()].some((d) => d.kind === k));
    replace(
      chips,
      present.map((kind) => {
        const n = [...state.decls.values()].filter((d) => d.kind === kind).length;
        const pressed = filters.kinds.size === 0 || filters.kinds.has(kind);
        return h(
          "button",
          {
            type: "button",
            class: `chip kind-${kind}${pressed ? " is-on" : ""}`,
            "aria-pressed": pressed ? "true" : "false",
            dataset: { kind },
            onclick: () => {
              if (filters.kinds.size === 0) {
                filters.kinds = new Set(present.filter((k) => k !== kind));
              } else if (filters.kinds.has(kind)) filters.kinds.delete(kind);
              else filters.kinds.add(kind);
              if (filters.kinds.size === present.length) filters.kinds.clear();
              draw();
            },
          },
          h("span", { class: "swatch" }),
          `${KIND_PLURAL[kind]} `,
          h("span", { class: "chip-count" }, String(n)),
        );
      }),
    );
  }

  function matches(d) {
    if (filters.kinds.size && !filters.kinds.has(d.kind)) return false;
    if (filters.mine && !isMine(d)) return false;
    if (filters.conflicts && !(state.conflicts.get(d.id) || []).length) return false;
    if (filters.text) {
      const hay = [declTitle(d), d.category, partyName(d.owner), d.kind].join(" ").toLowerCase();
      if (!hay.includes(filters.text)) return false;
    }
    return true;
  }

  function draw() {
    drawChips();
    const rows = [...state.decls.values()]
      .filter(matches)
      .sort(
        (a, b) =>
          KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || declTitle(a).localeCompare(declTitle(b)),
      );
    const inConflict = rows.filter((d) => currentConflicts(d.id).length).length;
    const active = rows.filter((d) => activeAt(d, state.time)).length;
    summary.textContent = state.showAll
      ? `${rows.length} shown · ${inConflict} in conflict`
      : `${rows.length} shown · ${active} active at the selected time · ${inConflict} in conflict`;
    if (!rows.length) {
      replace(list, h("li", { class: "empty" }, "No declarations match."));
      return;
    }
    replace(
      list,
      rows.map((d) => row(d)),
    );
  }

  function row(d) {
    const conflicts = currentConflicts(d.id).length;
    const first = (d.volumes || [])[0];
    const item = h(
      "li",
      {
        class: `decl-item kind-${d.kind}${isEmphasised(d) ? "" : " is-dim"}${
          state.selectedId === d.id ? " is-selected" : ""
        }`,
        tabindex: "0",
        role: "button",
        dataset: { declId: d.id, kind: d.kind },
      },
      h("span", { class: "swatch" }),
      h(
        "div",
        { class: "decl-main" },
        h("div", { class: "decl-title" }, declTitle(d)),
        h(
          "div",
          { class: "decl-sub" },
          `${KIND_LABEL[d.kind] || d.kind}${d.category ? ` · ${d.category}` : ""} · ${partyName(
            d.owner,
          )}`,
        ),
        first
          ? h("div", { class: "decl-sub" }, fmtWindowShort(first.time.start, first.time.end))
          : null,
      ),
      h(
        "div",
        { class: "decl-badges" },
        conflicts
          ? h("span", { class: "badge badge-conflict", title: "Conflicts" }, `⚠ ${conflicts}`)
          : null,
        protectionAlertsFor(d.id).length
          ? h(
              "span",
              { class: "badge badge-protection", title: "Protection alerts about it" },
              `⚠ ${protectionAlertsFor(d.id).length} protection alert${protectionAlertsFor(d.id).length > 1 ? "s" : ""}`,
            )
          : null,
        d.late_notice ? h("span", { class: "badge badge-late" }, "late notice") : null,
        isMine(d) ? h("span", { class: "badge badge-mine" }, "yours") : null,
      ),
    );
    const open = () => {
      select(d.id);
      layers.focus([d.id]);
    };
    item.addEventListener("click", open);
    item.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        open();
      }
    });
    return item;
  }

  on("decls", draw);
  on("parties", draw);
  on("time", draw);
  on("select", draw);
  on("inbox", draw);
  draw();
}

// ---- detail panel -------------------------------------------------------------------

export function mountDetail(panel, layers) {
  let token = 0;

  async function show(id) {
    const mine = ++token;
    if (!id) {
      panel.hidden = true;
      replace(panel);
      return;
    }
    panel.hidden = false;
    let decl = findDecl(id);
    if (!decl) {
      replace(panel, h("div", { class: "detail-loading" }, "Loading…"));
      try {
        decl = await fetchDecl(id);
      } catch (err) {
        if (mine !== token) return;
        replace(
          panel,
          closeButton(),
          h(
            "p",
            { class: "muted detail-missing" },
            err.status === 404 ? "This declaration is no longer available to you." : err.message,
          ),
        );
        return;
      }
    }
    if (mine !== token) return;
    render(decl);
  }

  function closeButton() {
    return h(
      "button",
      {
        type: "button",
        class: "btn btn-icon detail-close",
        "aria-label": "Close detail",
        title: "Close",
        onclick: () => select(null),
      },
      "×",
    );
  }

  function render(decl) {
    const conflicts = state.conflicts.get(decl.id) || [];
    // An operation this party may not see can still endanger its site: the alerts say so,
    // and the panel must never call such a site free of conflicts.
    const alerts = protectionAlertsFor(decl.id);
    const owner = isMine(decl);
    const canSeeDeliveries = owner || (state.me && state.me.role === "coordinator");
    const deliveries = h("div", { class: "deliveries", id: "detail-deliveries" });
    replace(
      panel,
      h(
        "div",
        { class: "detail-head" },
        kindChip(decl.kind),
        closeButton(),
        h("h2", { class: "detail-title", id: "detail-title" }, declTitle(decl)),
        h(
          "div",
          { class: "detail-badges" },
          h(
            "span",
            { class: `badge badge-state state-${decl.state}` },
            decl.state === "withdrawn" ? "withdrawn" : "active",
          ),
          decl.late_notice
            ? h(
                "span",
                {
                  class: "badge badge-late",
                  title: "Declared with less than the policy's minimum notice",
                },
                "late notice",
              )
            : null,
          alerts.length
            ? h(
                "span",
                { class: "badge badge-protection", id: "detail-alert-badge" },
                `⚠ ${alerts.length} protection alert${alerts.length > 1 ? "s" : ""}`,
              )
            : null,
          conflicts.length
            ? h(
                "span",
                { class: "badge badge-conflict" },
                `⚠ ${conflicts.length} conflict${conflicts.length > 1 ? "s" : ""}`,
              )
            : alerts.length
              ? null
              : h("span", { class: "badge badge-ok" }, "no conflicts"),
          owner ? h("span", { class: "badge badge-mine" }, "yours") : null,
        ),
      ),
      h(
        "div",
        { class: "detail-body" },
        alerts.length ? alertsSection(alerts) : null,
        h(
          "dl",
          { class: "facts" },
          fact("Owner", partyName(decl.owner)),
          fact("Kind", KIND_LABEL[decl.kind] || decl.kind),
          fact("Category", decl.category || "—"),
          fact("Position", readbackView(decl.position, "detail-position")),
          fact("Version", h("code", { class: "mono", id: "detail-version" }, decl.version)),
          fact("State", decl.state),
          fact("Declared", fmtTime(decl.created_at)),
          fact("Updated", fmtTime(decl.updated_at)),
          fact("Identifier", h("code", { class: "mono" }, decl.id)),
          decl.justification
            ? fact("Justification", h("span", { id: "detail-justification" }, decl.justification))
            : null,
        ),
        section(
          `Volumes (${(decl.volumes || []).length})`,
          h(
            "ol",
            { class: "volumes" },
            (decl.volumes || []).map((v) =>
              h(
                "li",
                {},
                h(
                  "div",
                  {},
                  h("strong", {}, v.geometry ? v.geometry.type : "?"),
                  Number(v.buffer_m) ? ` with a ${fmtDistance(v.buffer_m)} buffer` : "",
                ),
                h("div", { class: "muted" }, fmtAltitude(v.altitude)),
                h("div", { class: "muted" }, fmtWindow(v.time.start, v.time.end)),
              ),
            ),
          ),
        ),
        decl.restricts ? restrictsSection(decl.restricts) : null,
        metadataSection(decl.metadata),
        section(
          "Conflicts",
          conflicts.length
            ? h("ul", { class: "conflicts", id: "detail-conflicts" }, conflicts.map(conflictItem))
            : h(
                "p",
                { class: "muted" },
                alerts.length
                  ? "None with declarations you can see; the protection alerts above are about operations you cannot see."
                  : "None with declarations you can see.",
              ),
        ),
        canSeeDeliveries ? section("Notifications and acknowledgments", deliveries) : null,
        owner && decl.state === "active" ? withdrawBox(decl) : null,
      ),
    );
    if (canSeeDeliveries) loadDeliveries(decl, deliveries);
  }

  function withdrawBox(decl) {
    const box = h("div", { class: "withdraw" });
    const start = h(
      "button",
      { type: "button", class: "btn btn-danger-outline", id: "withdraw" },
      "Withdraw…",
    );
    start.addEventListener("click", () => {
      replace(
        box,
        h(
          "p",
          {},
          "Withdrawing notifies every party that was told about this declaration. It stays in the record.",
        ),
        h(
          "div",
          { class: "btn-row" },
          h(
            "button",
            {
              type: "button",
              class: "btn btn-danger",
              id: "withdraw-confirm",
              onclick: async (e) => {
                e.target.disabled = true;
                try {
                  const data = await del(
                    `/v1/declarations/${encodeURIComponent(decl.id)}?version=${encodeURIComponent(
                      decl.version,
                    )}`,
                  );
                  state.extra.set(decl.id, data.declaration);
                  toast(`Withdrawn. Record entry #${data.receipt ? data.receipt.index : "?"}.`);
                  emit("receipt", { what: `withdrew ${declTitle(decl)}`, receipt: data.receipt });
                  await loadDeclarations();
                  show(decl.id);
                } catch (err) {
                  e.target.disabled = false;
                  box.append(h("p", { class: "form-error" }, err.message));
                }
              },
            },
            "Withdraw declaration",
          ),
          h(
            "button",
            { type: "button", class: "btn", onclick: () => replace(box, start) },
            "Cancel",
          ),
        ),
      );
    });
    box.append(start);
    return box;
  }

  on("select", (id) => show(id));
  on("decls", () => {
    if (state.selectedId) show(state.selectedId);
  });
  on("parties", () => {
    if (state.selectedId) show(state.selectedId);
  });
  on("inbox", () => {
    if (state.selectedId) show(state.selectedId);
  });
}

/** The protection alerts about the shown declaration, newest first, at the top. */
function alertsSection(alerts) {
  return h(
    "section",
    { class: "detail-section detail-alerts", id: "detail-alerts", role: "alert" },
    h("h3", {}, "⚠ Protection alerts"),
    h(
      "ul",
      { class: "alert-lines" },
      alerts.map((n) =>
        h(
          "li",
          { class: `alert-line${n.acknowledged_at ? " is-acked" : ""}`, dataset: { notificationId: n.id } },
          h("strong", {}, protectionLine(n)),
          n.protection.operation
            ? h(
                "div",
                { class: "muted small" },
                `${n.protection.category || "operation"} of ${partyName(n.protection.operation.owner)}`,
                n.protection.justification ? ` · justification: ${n.protection.justification}` : "",
              )
            : h(
                "div",
                { class: "muted small" },
                "Its details are withheld by policy; the coordinator has them.",
              ),
          h(
            "div",
            { class: "muted small" },
            `Alert sent ${fmtTime(n.created_at)} · `,
            n.acknowledged_at ? `acknowledged ${fmtTime(n.acknowledged_at)}` : "not acknowledged yet (see your inbox)",
          ),
        ),
      ),
    ),
  );
}

/**
 * A position read back by the service (`position` of a declaration, or of
 * /v1/coordinates): decimal, DMS and MGRS, one a line, so a swapped latitude and longitude
 * shows as a place the reader did not mean.
 */
export function readbackView(position, id) {
  if (!position) return "—";
  const line = (label, notation, text) =>
    h(
      "div",
      { class: "readback-line" },
      h("span", { class: "muted" }, `${label} `),
      h("code", { class: "mono", dataset: { notation } }, text),
    );
  return h(
    "div",
    { class: "readback", id },
    line("Decimal", "decimal", position.decimal),
    line("DMS", "dms", position.dms),
    line("MGRS", "mgrs", position.mgrs || "none (beyond 80° S or 84° N)"),
  );
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function section(title, ...content) {
  return h("section", { class: "detail-section" }, h("h3", {}, title), ...content);
}

function restrictsSection(r) {
  const names = (r.parties || []).map((id) => partyName(id));
  return section(
    "Restricts",
    h(
      "dl",
      { class: "facts" },
      fact("Parties", names.length ? names.join(", ") : "—"),
      fact("Roles", (r.roles || []).length ? r.roles.join(", ") : "—"),
      fact(
        "Still allowed",
        (r.allowed_categories || []).length ? r.allowed_categories.join(", ") : "nothing",
      ),
    ),
  );
}

function metadataSection(md) {
  const entries = md && typeof md === "object" ? Object.entries(md) : [];
  if (!entries.length) return null;
  return section(
    "Metadata",
    h(
      "dl",
      { class: "facts" },
      entries.map(([k, v]) => fact(k, typeof v === "string" ? v : JSON.stringify(v))),
    ),
  );
}

/** Why two declarations conflict, in words, from the side of the one being shown. */
function conflictReason(c) {
  const ref = c.declaration || {};
  if (c.reason === "restriction") {
    return ref.kind === "restriction"
      ? "inside this restricted area, where it is not allowed"
      : "not allowed inside this restricted area";
  }
  if (c.reason === "separation") {
    return Number(c.min_distance_m) > 0
      ? `${fmtDistance(c.min_distance_m)} apart, closer than the required separation`
      : "overlapping";
  }
  return c.reason || "conflict";
}

export function conflictItem(c) {
  const ref = c.declaration || {};
  const other = findDecl(ref.id);
  const li = h(
    "li",
    { class: "conflict-item", dataset: { declId: ref.id } },
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => select(ref.id),
      },
      kindChip(ref.kind),
      " ",
      other ? declTitle(other) : `${KIND_LABEL[ref.kind] || ref.kind} ${ref.id}`,
    ),
    h("div", { class: "muted" }, `of ${partyName(ref.owner)} · ${conflictReason(c)}`),
    c.time_overlap
      ? h(
          "div",
          { class: "muted" },
          `at the same time: ${fmtWindowShort(c.time_overlap.start, c.time_overlap.end)}`,
        )
      : null,
  );
  return li;
}

async function loadDeliveries(decl, box) {
  replace(box, h("p", { class: "muted" }, "Loading deliveries…"));
  let data;
  try {
    data = await get(`/v1/declarations/${encodeURIComponent(decl.id)}/deliveries`);
  } catch (err) {
    replace(box, h("p", { class: "form-error" }, err.message));
    return;
  }
  replace(box, deliveriesTable(data.deliveries || []));
}

/** Who received the notifications about a declaration, and who acknowledged them, when. */
export function deliveriesTable(deliveries) {
  if (!deliveries.length) {
    return h("p", { class: "muted" }, "No party has been notified yet.");
  }
  const isLate = (d) => Boolean(d.overdue) && !d.acknowledged_at;
  const acked = deliveries.filter((d) => d.acknowledged_at).length;
  const overdue = deliveries.filter(isLate).length;
  const refusals = deliveries.filter((d) => isWarningResponse(d.response)).length;
  // Several versions: say which change each notification was about.
  const versions = new Set(deliveries.map((d) => d.version).filter(Boolean));
  // What needs someone's attention first: late, then refused, then waiting, then done.
  const rank = (d) =>
    isLate(d) ? 0 : isWarningResponse(d.response) ? 1 : d.acknowledged_at ? 3 : 2;
  const sorted = [...deliveries].sort(
    (a, b) => rank(a) - rank(b) || partyName(a.party).localeCompare(partyName(b.party)),
  );
  return h(
    "div",
    {},
    h(
      "p",
      { class: "deliv-summary" },
      `${deliveries.length} notified · ${acked} acknowledged`,
      overdue ? h("span", { class: "badge badge-overdue" }, `${overdue} overdue`) : null,
      refusals
        ? h(
            "span",
            { class: "badge badge-refusal" },
            `⚠ ${refusals} cannot assure or denied`,
          )
        : null,
    ),
    h(
      "table",
      { class: "table deliveries-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Party"),
          h("th", {}, "Delivered"),
          h("th", {}, "Acknowledged"),
          h("th", {}, "Answer"),
        ),
      ),
      h(
        "tbody",
        {},
        sorted.map((d) => {
          const late = isLate(d);
          const warn = isWarningResponse(d.response);
          return h(
            "tr",
            {
              class: [late ? "is-overdue" : d.acknowledged_at ? "is-acked" : "", warn ? "is-warning" : ""]
                .filter(Boolean)
                .join(" "),
              dataset: { party: d.party, notificationId: d.notification_id },
            },
            h(
              "td",
              {},
              partyName(d.party),
              versions.size > 1 && d.change
                ? h("div", { class: "muted small" }, `${d.change} · ${d.version || ""}`)
                : null,
            ),
            h("td", {}, d.delivered_at ? fmtTime(d.delivered_at) : "not yet"),
            h(
              "td",
              {},
              d.acknowledged_at
                ? h("span", { class: "ack-yes" }, `✓ ${fmtTime(d.acknowledged_at)}`)
                : late
                  ? [
                      h("span", { class: "ack-overdue" }, "overdue"),
                      d.due_at
                        ? h("div", { class: "muted small" }, `due ${fmtTime(d.due_at)}`)
                        : null,
                    ]
                  : [
                      h("span", { class: "muted" }, "not yet"),
                      d.due_at
                        ? h("div", { class: "muted small" }, `due ${fmtTime(d.due_at)}`)
                        : null,
                    ],
            ),
            h(
              "td",
              { class: "deliv-answer" },
              d.response ? responseBadge(d.response) : h("span", { class: "muted" }, "—"),
              d.comment ? h("div", { class: "deliv-comment" }, `“${d.comment}”`) : null,
              d.responded_at && d.response !== "acknowledged"
                ? h("div", { class: "muted small" }, fmtTime(d.responded_at))
                : null,
            ),
          );
        }),
      ),
    ),
  );
}
