// Files in and out: the Import tab (sites and movements from a CSV, XLSX, GeoJSON or KML/KMZ
// file) and the Export buttons of the declarations list.
//
// Import is always two steps. The file is first sent with dry_run=true, which writes
// nothing: the page shows what the service read (a table, and the rows on the map in their
// own layer) and what it would do. Only "Import N rows" sends it again for real. Rows that
// conflict with declarations the party has not confirmed seeing are refused (an error on
// `key`); ticking "I have reviewed these conflicts" puts those declarations' versions in
// the import's key, as the Declare tab's "I have seen these" does for one declaration.

/* global L */

import { ApiError, get, storedToken } from "./api.js";
import { conflictItem, kindChip } from "./declarations.js";
import { h, replace, toast } from "./dom.js";
import { declTitle, emit, loadDeclarations, on, state } from "./state.js";

/** Which roles may import (API.md v1.1: humanitarian, coordinator). */
export const IMPORTERS = ["humanitarian", "coordinator"];

/** The service's `format` for a file name's extension; KMZ is zipped KML. */
const FORMATS = {
  csv: { format: "csv", label: "CSV", type: "text/csv" },
  xlsx: {
    format: "xlsx",
    label: "Excel workbook (XLSX)",
    type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  },
  geojson: { format: "geojson", label: "GeoJSON", type: "application/geo+json" },
  json: { format: "geojson", label: "GeoJSON", type: "application/geo+json" },
  kml: { format: "kml", label: "KML", type: "application/vnd.google-earth.kml+xml" },
  kmz: { format: "kml", label: "KMZ (zipped KML)", type: "application/vnd.google-earth.kmz" },
};
const ACCEPT = Object.keys(FORMATS)
  .map((ext) => `.${ext}`)
  .join(",");

/** Beyond this many rows the map draws on a canvas: ten thousand SVG markers crawl. */
const SVG_LIMIT = 1000;
/** Rows put in the table at first; the rest on request (the counts are always complete). */
const TABLE_LIMIT = 1000;

const STATUS_LABEL = {
  dry: { created: "would create", updated: "would update", unchanged: "unchanged", error: "error" },
  real: { created: "created", updated: "updated", unchanged: "unchanged", error: "error" },
};

export function formatOf(fileName) {
  const dot = fileName.lastIndexOf(".");
  const ext = dot < 0 ? "" : fileName.slice(dot + 1).toLowerCase();
  return FORMATS[ext] || null;
}

// ---- the HTTP calls that carry files ------------------------------------------------

/**
 * Send raw bytes or read a file from the API, with the bearer token, as api.js does for
 * JSON (api() always sends JSON and parses JSON). Throws ApiError on 4xx/5xx.
 */
async function transfer(
  method,
  path,
  { body = undefined, type = null, accept = "application/json" } = {},
) {
  const token = storedToken();
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (type) headers["Content-Type"] = type;
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, {
      title: "Network error",
      code: "network",
      detail: `The service could not be reached (${err.message}).`,
    });
  }
  if (!response.ok) {
    const text = await response.text();
    let problem = null;
    try {
      problem = JSON.parse(text);
    } catch {
      problem = null;
    }
    if (!problem || typeof problem !== "object") {
      problem = { status: response.status, title: response.statusText, detail: text.slice(0, 300) };
    }
    // A refused token: ask again through api.js, whose listeners send the page back to the
    // login form, so that this path ends a session exactly as every other one does.
    if (response.status === 401) get("/v1/me").catch(() => {});
    throw new ApiError(response.status, problem);
  }
  return response;
}

async function sendImport(file, fmt, { dryRun, key }) {
  const params = new URLSearchParams({ format: fmt.format, dry_run: dryRun ? "true" : "false" });
  for (const version of key) params.append("key", version);
  const response = await transfer("POST", `/v1/declarations/import?${params}`, {
    body: file,
    type: fmt.type,
  });
  return response.json();
}

// ---- the Import tab -----------------------------------------------------------------

export function mountImport(panel, map) {
  const pane = map.createPane("import");
  pane.style.zIndex = 460; // above the declarations and the draft, under the badges
  const layer = L.layerGroup();
  const marks = new Map(); // row -> Leaflet layer
  let visible = false;

  let file = null;
  let fmt = null;
  let key = []; // versions the person has confirmed seeing
  let reviewed = null; // the conflicts shown for review: [{conflict, rows}]
  let preview = null; // the dry run's answer for the current file and key
  let busy = false;
  let run = 0; // answers to superseded requests are dropped

  const input = h("input", {
    type: "file",
    id: "import-file",
    class: "import-file",
    accept: ACCEPT,
    "aria-describedby": "import-format",
  });
  const formatLine = h("div", { class: "hint", id: "import-format" }, "");
  const problem = h("div", {
    class: "form-problem",
    id: "import-problem",
    role: "alert",
    hidden: true,
  });
  const status = h("p", { class: "muted", id: "import-status", hidden: true });
  const review = h("div", { id: "import-review" });
  const actions = h("div", { class: "btn-row", id: "import-actions" });
  const results = h("div", { id: "import-results" });

  replace(
    panel,
    h(
      "div",
      { class: "panel-body import-panel" },
      h("h2", { class: "declare-heading" }, "Import sites and movements"),
      h(
        "p",
        { class: "import-lead" },
        "One site or movement per row (CSV, XLSX) or feature (GeoJSON, KML, KMZ). You see first what would be declared; nothing is written until you press ",
        h("strong", {}, "Import"),
        ".",
      ),
      h(
        "details",
        { class: "more import-columns" },
        h("summary", {}, "Columns"),
        h(
          "p",
          { class: "hint" },
          "name, category, kind (site or movement; default site), lat and lon (decimal degrees or degrees-minutes-seconds such as 36°12'30\"N) or mgrs — or the feature's geometry — buffer_m, start, end, upper_m, external_id. A row whose external_id you imported before is updated, or left unchanged.",
        ),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "import-file" }, "File"),
        input,
        formatLine,
      ),
      problem,
      status,
      review,
      actions,
      results,
    ),
  );

  input.addEventListener("change", () => {
    const chosen = input.files && input.files[0];
    reset();
    if (!chosen) return;
    const found = formatOf(chosen.name);
    if (!found) {
      showProblem(
        `“${chosen.name}” is not a file this page can read: choose a .csv, .xlsx, .geojson, .kml or .kmz file.`,
      );
      return;
    }
    file = chosen;
    fmt = found;
    formatLine.textContent = `Read as ${fmt.label} · ${sizeText(file.size)}`;
    dryRun();
  });

  function reset() {
    run++;
    file = null;
    fmt = null;
    key = [];
    reviewed = null;
    preview = null;
    formatLine.textContent = "";
    showProblem(null);
    setStatus(null);
    replace(review);
    replace(actions);
    replace(results);
    clearMap();
  }

  function setStatus(text) {
    status.hidden = !text;
    status.textContent = text || "";
  }

  /** A refusal of the whole file (400, 413, …) or a page-side message. */
  function showProblem(err) {
    if (!err) {
      problem.hidden = true;
      replace(problem);
      return;
    }
    problem.hidden = false;
    if (typeof err === "string") {
      replace(problem, h("strong", {}, err));
      return;
    }
    const p = (err instanceof ApiError && err.problem) || {};
    const title =
      err.status === 413
        ? "The file is too large for this service"
        : err.status === 400 || err.status === 422
          ? "The file could not be read"
          : err.status === 403
            ? "You may not import"
            : "The import failed";
    replace(
      problem,
      h("strong", {}, title),
      h("div", { id: "import-problem-detail" }, err.message),
      (p.errors || []).length
        ? h(
            "ul",
            {},
            p.errors.map((e) =>
              h("li", {}, e.field ? [h("code", {}, e.field), ": "] : null, e.message || ""),
            ),
          )
        : null,
      h("div", { class: "muted small" }, "Nothing was written."),
    );
  }

  async function dryRun() {
    if (!file) return;
    const mine = ++run;
    busy = true;
    showProblem(null);
    setStatus(`Checking ${file.name}… nothing is written.`);
    replace(actions);
    try {
      const data = await sendImport(file, fmt, { dryRun: true, key });
      if (mine !== run) return;
      preview = data;
      setStatus(null);
      showReview(data);
      showResults(data, { dryRun: true });
      showImportButton(data);
    } catch (err) {
      if (mine !== run) return;
      setStatus(null);
      replace(results);
      clearMap();
      showProblem(err);
    } finally {
      if (mine === run) busy = false;
    }
  }

  async function importNow() {
    if (!file || !preview || busy) return;
    const mine = ++run;
    busy = true;
    showProblem(null);
    replace(actions);
    setStatus(`Importing ${file.name}…`);
    try {
      const data = await sendImport(file, fmt, { dryRun: false, key });
      if (mine !== run) return;
      preview = null;
      setStatus(null);
      replace(review);
      showResults(data, { dryRun: false });
      replace(
        actions,
        h(
          "button",
          {
            type: "button",
            class: "btn",
            id: "import-again",
            onclick: () => {
              input.value = "";
              reset();
              input.click();
            },
          },
          "Import another file",
        ),
      );
      const written = count(data, "created") + count(data, "updated");
      toast(`Imported: ${written} declaration${written === 1 ? "" : "s"} written.`);
      emit("imported", data);
      await loadDeclarations();
    } catch (err) {
      if (mine !== run) return;
      setStatus(null);
      showProblem(err);
      // The preview still stands: the person may try again.
      if (preview) showImportButton(preview);
    } finally {
      if (mine === run) busy = false;
    }
  }

  function showImportButton(data) {
    const n = count(data, "created") + count(data, "updated");
    const errors = count(data, "error");
    replace(
      actions,
      h(
        "button",
        {
          type: "button",
          class: "btn btn-primary",
          id: "import-submit",
          disabled: n === 0,
          onclick: importNow,
        },
        `Import ${n} row${n === 1 ? "" : "s"}`,
      ),
      h(
        "span",
        { class: "hint", id: "import-submit-hint" },
        n === 0
          ? "Nothing to write."
          : errors
            ? `The ${errors} row${errors === 1 ? "" : "s"} in error will be left out.`
            : "",
      ),
    );
  }

  /**
   * The conflicts that keep rows out: those of the rows refused on `key`, grouped by the
   * declaration in the way. Kept while the box is ticked, as the re-run no longer reports
   * them as errors.
   */
  function showReview(data) {
    const fresh = unseenConflicts(data.results || []);
    if (!key.length || !reviewed) reviewed = fresh;
    else {
      // Still refused with the key: declarations changed since, or new ones in the way.
      for (const f of fresh) {
        const version = f.conflict.declaration.version;
        if (!reviewed.some((r) => r.conflict.declaration.version === version)) reviewed.push(f);
      }
    }
    if (!reviewed.length) {
      replace(review);
      return;
    }
    const rows = new Set(reviewed.flatMap((r) => r.rows));
    const allIn = reviewed.every((r) => key.includes(r.conflict.declaration.version));
    const box = h("input", {
      type: "checkbox",
      id: "import-reviewed",
      checked: key.length > 0 && allIn,
    });
    box.addEventListener("change", () => {
      key = box.checked ? [...new Set(reviewed.map((r) => r.conflict.declaration.version))] : [];
      dryRun();
    });
    const n = reviewed.length;
    replace(
      review,
      h(
        "div",
        { class: "awareness import-awareness", id: "import-conflicts", role: "alert" },
        h("h3", {}, "Please review these conflicts"),
        h(
          "p",
          {},
          `${plural(rows.size, "row")} (${[...rows].sort((a, b) => a - b).join(", ")}) ` +
            `conflict${rows.size === 1 ? "s" : ""} with ${plural(n, "declaration")} ` +
            "you have not confirmed seeing:",
        ),
        h(
          "ul",
          { class: "conflicts" },
          reviewed.map(({ conflict, rows: which }) => {
            const item = conflictItem(conflict);
            item.append(
              h("div", { class: "muted" }, `${which.length === 1 ? "row" : "rows"} ${which.join(", ")}`),
            );
            return item;
          }),
        ),
        h(
          "label",
          { class: "check import-reviewed", for: "import-reviewed" },
          box,
          "I have reviewed these conflicts",
        ),
        h(
          "p",
          { class: "muted small" },
          key.length && allIn
            ? "Their current versions go into the import, which records that you have seen them."
            : "Until then those rows are left out.",
        ),
      ),
    );
  }

  function showResults(data, { dryRun: dry }) {
    const rows = data.results || [];
    const labels = dry ? STATUS_LABEL.dry : STATUS_LABEL.real;
    const counts = h(
      "p",
      { class: "import-counts", id: dry ? "import-preview-counts" : "import-result-counts" },
      countChip(labels.created, count(data, "created"), "created"),
      countChip(labels.updated, count(data, "updated"), "updated"),
      countChip("unchanged", count(data, "unchanged"), "unchanged"),
      countChip(count(data, "error") === 1 ? "error" : "errors", count(data, "error"), "error"),
    );
    const body = h("tbody", {});
    const table = h(
      "table",
      { class: "table import-table", id: dry ? "import-preview" : "import-result" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Row"),
          h("th", {}, "Status"),
          h("th", {}, "Name"),
          h("th", {}, "Kind"),
          h("th", {}, "Position"),
          h("th", {}, "Problems"),
        ),
      ),
      body,
    );
    const more = h("div", { class: "btn-row" });
    const fill = (limit) => {
      replace(body, rows.slice(0, limit).map((r) => tableRow(r, labels)));
      replace(more);
      if (rows.length > limit) {
        more.append(
          h(
            "button",
            { type: "button", class: "btn btn-small", onclick: () => fill(rows.length) },
            `Show all ${rows.length} rows`,
          ),
        );
      }
    };
    fill(TABLE_LIMIT);
    replace(
      results,
      h("h3", { class: "subhead" }, dry ? "Preview (nothing written yet)" : "Imported"),
      counts,
      rows.length
        ? h("div", { class: "import-table-wrap", tabindex: "0", "aria-label": "Rows" }, table)
        : h("p", { class: "muted" }, "The file holds no rows."),
      more,
    );
    drawMap(rows);
  }

  function tableRow(r, labels) {
    const decl = r.declaration || null;
    const pos = positionOf(r);
    const errors = r.errors || [];
    const tr = h(
      "tr",
      {
        class: `import-row status-${r.status}${r.status === "error" ? " is-error" : ""}`,
        dataset: { row: String(r.row), status: r.status },
        tabindex: geometriesOf(r).length ? "0" : null,
      },
      h("td", { class: "num" }, String(r.row)),
      h(
        "td",
        {},
        h("span", { class: `badge import-status status-${r.status}` }, labels[r.status] || r.status),
      ),
      h("td", { class: "import-name" }, nameOf(r)),
      h("td", {}, decl || r.kind ? kindChip((decl && decl.kind) || r.kind) : "—"),
      h(
        "td",
        { class: "import-position" },
        pos
          ? [
              h("div", { class: "mono" }, pos.decimal),
              pos.dms ? h("div", { class: "mono muted" }, pos.dms) : null,
              pos.mgrs ? h("div", { class: "mono muted" }, pos.mgrs) : null,
            ]
          : "—",
      ),
      h(
        "td",
        { class: "import-errors" },
        errors.length
          ? h(
              "ul",
              {},
              errors.map((e) =>
                h(
                  "li",
                  {},
                  e.field ? h("code", { class: "import-column" }, e.field) : null,
                  e.field ? " " : null,
                  e.message || "not accepted",
                ),
              ),
            )
          : (r.conflicts || []).length
            ? h("span", { class: "muted" }, `${plural(r.conflicts.length, "conflict")}, reviewed`)
            : "",
      ),
    );
    const go = () => focusRow(r.row);
    tr.addEventListener("click", go);
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        go();
      }
    });
    return tr;
  }

  // ---- the map layer ----------------------------------------------------------------

  function clearMap() {
    layer.clearLayers();
    marks.clear();
  }

  function drawMap(rows) {
    clearMap();
    const drawable = rows.filter((r) => geometriesOf(r).length);
    // Canvas for big files: SVG keeps one element per marker, which is what the tests
    // look at, but ten thousand of them make the map crawl.
    const renderer =
      drawable.length > SVG_LIMIT ? L.canvas({ pane: "import" }) : L.svg({ pane: "import" });
    for (const r of drawable) {
      const bad = r.status === "error";
      const color = bad ? "#dc2626" : "#0f2a44";
      const fill = bad ? "#fecaca" : "#38bdf8";
      const className = `import-mark ${bad ? "is-bad" : "is-good"}`;
      const group = L.featureGroup();
      for (const { geometry, buffer } of geometriesOf(r)) {
        if (buffer > 0 && geometry.type === "Point") {
          const [lon, lat] = geometry.coordinates;
          L.circle([lat, lon], {
            renderer,
            pane: "import",
            radius: buffer,
            color,
            weight: 1,
            dashArray: "4 3",
            fillColor: fill,
            fillOpacity: 0.08,
            interactive: false,
          }).addTo(group);
        }
        L.geoJSON(geometry, {
          pointToLayer: (_feature, ll) =>
            L.circleMarker(ll, {
              renderer,
              pane: "import",
              radius: 7,
              color,
              weight: 2.5,
              fillColor: fill,
              fillOpacity: 0.9,
              dashArray: bad ? "3 2" : null,
              className,
            }),
          style: () => ({
            renderer,
            pane: "import",
            color,
            weight: 2.5,
            dashArray: bad ? "6 4" : null,
            fillColor: fill,
            fillOpacity: 0.2,
            className,
          }),
        }).addTo(group);
      }
      group.bindTooltip(
        () =>
          h(
            "div",
            { class: "tt" },
            h("div", { class: "tt-title" }, `Row ${r.row}: ${nameOf(r)}`),
            h(
              "div",
              { class: bad ? "tt-conflict" : "tt-sub" },
              bad ? (r.errors || []).map((e) => e.message).join("; ") || "error" : r.status,
            ),
          ),
        { sticky: true, className: "dc-tooltip" },
      );
      group.on("click", (e) => {
        L.DomEvent.stopPropagation(e);
        pickRow(r.row, { scroll: true });
      });
      group.addTo(layer);
      marks.set(r.row, group);
    }
    if (visible && marks.size) {
      const bounds = L.featureGroup([...marks.values()]).getBounds();
      if (bounds.isValid()) map.fitBounds(bounds.pad(0.15), { maxZoom: 12, animate: false });
    }
  }

  /** A table row picked: zoom the map to it and mark it in both places. */
  function focusRow(row) {
    pickRow(row, { scroll: false });
    const mark = marks.get(row);
    if (!mark) return;
    const bounds = mark.getBounds();
    if (!bounds.isValid()) return;
    map.fitBounds(bounds.pad(0.5), { maxZoom: 14, animate: false });
    mark.openTooltip(bounds.getCenter());
  }

  function pickRow(row, { scroll }) {
    for (const tr of results.querySelectorAll("tr.import-row")) {
      const on = tr.dataset.row === String(row);
      tr.classList.toggle("is-selected", on);
      if (on && scroll) tr.scrollIntoView({ block: "nearest" });
    }
    for (const [r, mark] of marks) {
      mark.eachLayer((l) => {
        const el = l.getElement && l.getElement();
        if (el) el.classList.toggle("is-selected", r === row);
        if (r === row && l.bringToFront) l.bringToFront();
      });
    }
  }

  on("tab", (name) => {
    visible = name === "import";
    if (visible) layer.addTo(map);
    else layer.remove();
  });

  window.__deconflict = { ...(window.__deconflict || {}), importLayer: layer };
}

// ---- what a result row says ---------------------------------------------------------

function count(data, status) {
  const field = status === "error" ? "errors" : status;
  const n = data[field];
  if (typeof n === "number") return n;
  return (data.results || []).filter((r) => r.status === status).length;
}

function countChip(label, n, status) {
  return h(
    "span",
    { class: `import-count status-${status}${n ? "" : " is-zero"}`, dataset: { status } },
    h("strong", {}, String(n)),
    ` ${label}`,
  );
}

function nameOf(r) {
  if (r.declaration) {
    const title = declTitle(r.declaration);
    if (title) return title;
  }
  return r.name || "—";
}

/** The geometries a row would declare, each with its buffer. */
function geometriesOf(r) {
  const decl = r.declaration;
  if (decl && Array.isArray(decl.volumes) && decl.volumes.length) {
    return decl.volumes
      .filter((v) => v && v.geometry && v.geometry.type)
      .map((v) => ({ geometry: v.geometry, buffer: Number(v.buffer_m) || 0 }));
  }
  const pos = positionOf(r);
  if (pos && Number.isFinite(pos.lat) && Number.isFinite(pos.lon)) {
    return [{ geometry: { type: "Point", coordinates: [pos.lon, pos.lat] }, buffer: 0 }];
  }
  return [];
}

/** The position read back by the service (decimal, DMS, MGRS), or what the geometry says. */
function positionOf(r) {
  const p = (r.declaration && r.declaration.position) || r.position || null;
  if (p && (p.decimal || Number.isFinite(p.lat))) {
    return {
      lat: Number(p.lat),
      lon: Number(p.lon),
      decimal: p.decimal || `${Number(p.lat).toFixed(6)}, ${Number(p.lon).toFixed(6)}`,
      dms: p.dms || null,
      mgrs: p.mgrs || null,
    };
  }
  const v = r.declaration && (r.declaration.volumes || [])[0];
  const g = v && v.geometry;
  if (g && g.type === "Point" && Array.isArray(g.coordinates)) {
    const [lon, lat] = g.coordinates;
    return { lat, lon, decimal: `${lat.toFixed(6)}, ${lon.toFixed(6)}`, dms: null, mgrs: null };
  }
  return null;
}

/**
 * The conflicts of the rows refused on `key` (declarations the party has not confirmed
 * seeing), one entry per declaration in the way, with the rows it blocks.
 */
function unseenConflicts(results) {
  const byVersion = new Map();
  for (const r of results) {
    if (!(r.errors || []).some((e) => e.field === "key")) continue;
    for (const c of r.conflicts || []) {
      const ref = c.declaration || {};
      if (!ref.version) continue;
      const entry = byVersion.get(ref.version) || { conflict: c, rows: [] };
      if (!entry.rows.includes(r.row)) entry.rows.push(r.row);
      byVersion.set(ref.version, entry);
    }
  }
  return [...byVersion.values()];
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// ---- export ---------------------------------------------------------------------------

const EXPORTS = [
  { format: "csv", label: "CSV", ext: "csv", accept: "text/csv" },
  { format: "geojson", label: "GeoJSON", ext: "geojson", accept: "application/geo+json" },
];

/**
 * The Export buttons, added to the head of the declarations list: a download of what this
 * party may see (GET /v1/export). A plain link cannot send the Authorization header, so
 * the file is fetched and handed to the browser as a blob.
 */
export function mountExport(panel) {
  const head = panel.querySelector(".panel-head") || panel;
  const row = h(
    "div",
    { class: "export-row", id: "export-row" },
    h("span", { class: "hint" }, "Export what you see:"),
    EXPORTS.map((x) =>
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          id: `export-${x.format}`,
          title: `Download the declarations visible to you as ${x.label}`,
          onclick: (e) => download(x, e.currentTarget),
        },
        `⤓ ${x.label}`,
      ),
    ),
  );
  head.append(row);
}

async function download(x, button) {
  button.disabled = true;
  try {
    const response = await transfer("GET", `/v1/export?format=${x.format}`, { accept: x.accept });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: fileName(response, x), hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    // Give the browser the time to start the download before the blob goes.
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    toast(`Could not export: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

/** The service's file name (Content-Disposition), else "deconflict-<party>-<date>.<ext>". */
function fileName(response, x) {
  const cd = response.headers.get("Content-Disposition") || "";
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  if (m) {
    const name = decodeURIComponent(m[1]).replace(/[\\/]/g, "_").trim();
    if (name) return name;
  }
  const who = ((state.me && state.me.name) || "export")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  const day = new Date().toISOString().slice(0, 10);
  return `deconflict-${who || "export"}-${day}.${x.ext}`;
}
