// The Declare tab: draw on the map, type a point's coordinates or paste GeoJSON, fill in
// the volume, and declare. Typed coordinates (decimal, DMS, MGRS) are read by the service
// (GET /v1/coordinates, the parser import uses) and read back before they are placed.
// A 409 missing_awareness is explained in plain words; the missed declarations are called
// out on the map, and one button resends with their versions added to the key.

/* global L */

import { ApiError, get, post } from "./api.js";
import { conflictItem, kindChip, readbackView } from "./declarations.js";
import { debounce, h, replace, toast } from "./dom.js";
import { justificationProblem, protectedBox, protectedRefs } from "./justification.js";
import {
  DECLARABLE,
  declPhrase,
  declTitle,
  emit,
  fetchDecl,
  KIND_LABEL,
  loadDeclarations,
  on,
  select,
  setHighlight,
  state,
} from "./state.js";

// Suggestions only: a category is free text (these follow the built-in demo).
const CATEGORIES = {
  operation: [
    "strike",
    "air-patrol",
    "reconnaissance",
    "transport",
    "training",
    "refuelling",
    "non-combat",
  ],
  site: ["hospital", "school", "warehouse", "water-point", "camp"],
  movement: ["convoy", "evacuation"],
  restriction: ["designated-area"],
};
const ROLES = ["operator", "humanitarian", "observer"];

/** Turn a pasted GeoJSON text into a list of geometries (Geometry, Feature, collections). */
export function parseGeometries(text) {
  const trimmed = text.trim();
  if (!trimmed) return [];
  let obj;
  try {
    obj = JSON.parse(trimmed);
  } catch (err) {
    throw new Error(`Not valid JSON: ${err.message}`, { cause: err });
  }
  const out = [];
  const walk = (o) => {
    if (!o || typeof o !== "object") throw new Error("Expected a GeoJSON object.");
    if (o.type === "FeatureCollection") (o.features || []).forEach(walk);
    else if (o.type === "Feature") walk(o.geometry);
    else if (o.type === "GeometryCollection") (o.geometries || []).forEach(walk);
    else if (typeof o.type === "string" && "coordinates" in o) out.push(o);
    else throw new Error("Expected a GeoJSON geometry, Feature or FeatureCollection.");
  };
  walk(obj);
  return out;
}

function round(coords) {
  if (typeof coords === "number") return Math.round(coords * 1e6) / 1e6;
  return coords.map(round);
}

function geometriesText(geoms) {
  if (!geoms.length) return "";
  if (geoms.length === 1) return JSON.stringify(geoms[0]);
  return JSON.stringify({
    type: "FeatureCollection",
    features: geoms.map((g) => ({ type: "Feature", properties: {}, geometry: g })),
  });
}

/** "2025-01-14T10:00" (a datetime-local value, read as UTC) → RFC 3339, or null. */
function toRfc3339(value) {
  if (!value) return null;
  const v = value.length === 16 ? `${value}:00` : value;
  return `${v}Z`;
}

function toLocalInput(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}

function numberOrNull(input) {
  const v = input.value.trim();
  if (v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : v; // let the server name a bad value
}

export function mountDeclare(panel, map, layers) {
  const kinds = DECLARABLE[state.me.role] || [];
  if (!kinds.length) {
    replace(
      panel,
      h("p", { class: "empty" }, "Your role does not declare anything; it can read and verify."),
    );
    return;
  }
  let kind = kinds[0];
  let pendingKey = [];
  let lastBody = null;
  let justification = null; // the justification box, while one is asked for
  let justificationText = ""; // what was written in it, kept while the request is the same

  const draftPane = map.createPane("draft");
  draftPane.style.zIndex = 450;
  const draft = L.layerGroup().addTo(map);

  const field = (id, label, input, hint) =>
    h(
      "div",
      { class: "field", dataset: { field: id } },
      h("label", { for: `declare-${id}` }, label),
      input,
      hint ? h("div", { class: "hint" }, hint) : null,
      h("div", { class: "field-error", id: `declare-${id}-error`, hidden: true }),
    );

  const kindGroup = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Kind" });
  const name = h("input", { id: "declare-name", class: "input", type: "text", maxlength: "200" });
  const category = h("input", {
    id: "declare-category",
    class: "input",
    type: "text",
    list: "declare-categories",
  });
  const categories = h("datalist", { id: "declare-categories" });
  const geojson = h("textarea", {
    id: "declare-geojson",
    class: "input mono",
    rows: "4",
    spellcheck: "false",
    placeholder: '{"type": "Point", "coordinates": [36.3, 33.5]}',
  });
  const buffer = h("input", {
    id: "declare-buffer",
    class: "input",
    type: "number",
    min: "0",
    step: "any",
    value: "0",
  });
  const lower = h("input", { id: "declare-lower", class: "input", type: "number", step: "any" });
  const upper = h("input", { id: "declare-upper", class: "input", type: "number", step: "any" });
  const start = h("input", { id: "declare-start", class: "input", type: "datetime-local" });
  const end = h("input", { id: "declare-end", class: "input", type: "datetime-local" });
  const metadata = h("textarea", {
    id: "declare-metadata",
    class: "input mono",
    rows: "2",
    spellcheck: "false",
    placeholder: '{"callsign": "EAGLE 1"}',
  });
  const restrictParties = h("div", { class: "checklist", id: "declare-restrict-parties" });
  const restrictRoles = h(
    "div",
    { class: "checklist", id: "declare-restrict-roles" },
    ROLES.map((r) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", value: r, name: "restrict-role" }),
        r,
      ),
    ),
  );
  const allowed = h("input", {
    id: "declare-allowed",
    class: "input",
    type: "text",
    placeholder: "non-combat, medical evacuation",
  });
  const restrictBox = h(
    "fieldset",
    { class: "restrict-box" },
    h("legend", {}, "Restriction"),
    field("restrict-parties", "Restricted parties", restrictParties),
    field("restrict-roles", "Restricted roles", restrictRoles),
    field("allowed", "Categories still allowed inside", allowed, "Comma-separated."),
  );
  const drawButtons = h(
    "div",
    { class: "btn-row draw-row" },
    h("span", { class: "hint" }, "Draw:"),
    drawButton("CircleMarker", "Point"),
    drawButton("Line", "Line"),
    drawButton("Polygon", "Polygon"),
    h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        id: "declare-clear-geometry",
        onclick: clearGeometry,
      },
      "Clear",
    ),
  );
  const geomError = h("div", { class: "field-error", id: "declare-geojson-parse", hidden: true });
  // A point by its coordinates: read back as the person types, placed with "Add point".
  const coords = h("input", {
    id: "declare-coords",
    class: "input mono",
    type: "text",
    maxlength: "200",
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "15°21'N 44°12'E, 15.35, 44.2 or 38PMB1413397196",
  });
  const coordsAdd = h(
    "button",
    { type: "button", class: "btn btn-small", id: "declare-coords-add", disabled: true },
    "Add point",
  );
  const coordsReadback = h("div", { id: "declare-coords-readback", "aria-live": "polite" });
  const coordsError = h("div", { class: "field-error", id: "declare-coords-message", hidden: true });
  const checkBtn = h(
    "button",
    { type: "button", class: "btn", id: "declare-check" },
    "Check conflicts",
  );
  const submitBtn = h(
    "button",
    { type: "submit", class: "btn btn-primary", id: "declare-submit" },
    "Declare",
  );
  const result = h("div", { class: "declare-result", id: "declare-result", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "declare-form", id: "declare-form", novalidate: true },
    kindGroup,
    field("name", "Name", name, "Shown to the parties who can see this declaration."),
    field("category", "Category", category),
    categories,
    h(
      "div",
      { class: "field", dataset: { field: "geojson" } },
      h("label", { for: "declare-geojson" }, "Where"),
      drawButtons,
      h("label", { for: "declare-coords" }, "Point by coordinates"),
      h("div", { class: "btn-row" }, coords, coordsAdd),
      h(
        "div",
        { class: "hint" },
        "Latitude then longitude, in decimal degrees or degrees-minutes-seconds (N/S, E/W), or an MGRS reference. Check the read-back before adding.",
      ),
      coordsError,
      coordsReadback,
      geojson,
      h(
        "div",
        { class: "hint" },
        "Draw on the map, or paste a GeoJSON geometry, Feature or FeatureCollection (lon, lat; WGS84). Each geometry becomes one volume.",
      ),
      geomError,
      h("div", { class: "field-error", id: "declare-geojson-error", hidden: true }),
    ),
    h(
      "div",
      { class: "grid-2" },
      field("buffer", "Buffer (m)", buffer),
      h("div"),
      field("lower", "Altitude from (m AMSL)", lower, "Empty: unbounded."),
      field("upper", "Altitude to (m AMSL)", upper, "Empty: unbounded."),
      field("start", "Start (UTC)", start),
      field("end", "End (UTC)", end, "Empty: until withdrawn."),
    ),
    restrictBox,
    h(
      "details",
      { class: "more" },
      h("summary", {}, "More metadata"),
      field("metadata", "Metadata (JSON object)", metadata),
    ),
    h("div", { class: "form-problem", id: "declare-problem", role: "alert", hidden: true }),
    h("div", { class: "btn-row" }, checkBtn, submitBtn),
    result,
  );
  replace(panel, h("div", { class: "panel-body" }, form));

  function drawKinds() {
    if (kinds.length === 1) {
      replace(
        kindGroup,
        h("h2", { class: "declare-heading" }, `New ${KIND_LABEL[kind].toLowerCase()}`),
      );
      kindGroup.className = "";
      kindGroup.removeAttribute("role");
      return;
    }
    replace(
      kindGroup,
      kinds.map((k) =>
        h(
          "button",
          {
            type: "button",
            role: "radio",
            class: `seg${k === kind ? " is-on" : ""}`,
            "aria-checked": k === kind ? "true" : "false",
            id: `declare-kind-${k}`,
            onclick: () => {
              kind = k;
              applyKind();
            },
          },
          `Declare ${KIND_LABEL[k].toLowerCase()}`,
        ),
      ),
    );
  }

  function applyKind() {
    drawKinds();
    replace(
      categories,
      (CATEGORIES[kind] || []).map((c) => h("option", { value: c })),
    );
    restrictBox.hidden = kind !== "restriction";
    const next = Math.ceil(Date.now() / 3600000) * 3600000;
    if (!start.value) start.value = toLocalInput(next);
    if (!end.value && (kind === "operation" || kind === "movement")) {
      end.value = toLocalInput(next + 4 * 3600000);
    }
    resetOutcome();
  }

  function drawParties() {
    const others = [...state.parties.values()].filter((p) => !state.me || p.id !== state.me.id);
    replace(
      restrictParties,
      others.length
        ? others.map((p) =>
            h(
              "label",
              { class: "check" },
              h("input", { type: "checkbox", value: p.id, name: "restrict-party" }),
              `${p.name} (${p.role})`,
            ),
          )
        : h("span", { class: "muted" }, "No other parties."),
    );
  }

  // ---- geometry: drawing and the draft preview ----

  function drawButton(shape, label) {
    return h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        id: `declare-draw-${label.toLowerCase()}`,
        onclick: () => {
          map.pm.disableDraw();
          map.pm.enableDraw(shape, {
            snappable: false,
            continueDrawing: false,
            templineStyle: { color: "#111827" },
            hintlineStyle: { color: "#111827", dashArray: [5, 5] },
            pathOptions: { color: "#111827" },
          });
          toast(
            shape === "CircleMarker"
              ? "Click the map to place the point."
              : "Click the map to add vertices; click the first (or last) vertex to finish.",
          );
        },
      },
      label,
    );
  }

  map.on("pm:drawstart", () => map.getContainer().classList.add("is-drawing"));
  map.on("pm:drawend", () => map.getContainer().classList.remove("is-drawing"));
  map.on("pm:create", (e) => {
    const g = e.layer.toGeoJSON().geometry;
    e.layer.remove();
    g.coordinates = round(g.coordinates);
    let geoms;
    try {
      geoms = parseGeometries(geojson.value);
    } catch {
      geoms = []; // a broken text is replaced by what was drawn
    }
    geoms.push(g);
    geojson.value = geometriesText(geoms);
    renderDraft();
  });

  function clearGeometry() {
    geojson.value = "";
    renderDraft();
    if (coordsReadback.querySelector("#declare-coords-added")) replace(coordsReadback);
  }

  function currentGeometries() {
    try {
      const geoms = parseGeometries(geojson.value);
      geomError.hidden = true;
      return geoms;
    } catch (err) {
      geomError.textContent = err.message;
      geomError.hidden = false;
      return null;
    }
  }

  function renderDraft() {
    draft.clearLayers();
    const geoms = currentGeometries();
    if (!geoms) return;
    const b = Number(buffer.value) || 0;
    const style = {
      pane: "draft",
      color: "#111827",
      weight: 2,
      dashArray: "6 4",
      fillColor: "#111827",
      fillOpacity: 0.08,
      interactive: false,
    };
    for (const g of geoms) {
      try {
        if (g.type === "Point") {
          const ll = L.latLng(g.coordinates[1], g.coordinates[0]);
          if (b > 0) draft.addLayer(L.circle(ll, { ...style, radius: b }));
          draft.addLayer(
            L.circleMarker(ll, { ...style, radius: 4, fillOpacity: 1, dashArray: null }),
          );
        } else {
          draft.addLayer(L.geoJSON(g, { style: () => style, pane: "draft", interactive: false }));
        }
      } catch {
        // An unusual geometry is left for the server to judge; the preview skips it.
      }
    }
  }

  geojson.addEventListener("input", debounce(renderDraft, 250));

  // ---- a point by its coordinates ----

  const candidate = L.layerGroup().addTo(map);
  let typed = null; // the position the service read from what is typed, while it stands

  function showTyped(position, message) {
    typed = position;
    coordsAdd.disabled = !position;
    coordsError.hidden = !message;
    coordsError.textContent = message || "";
    if (message) coords.setAttribute("aria-invalid", "true");
    else coords.removeAttribute("aria-invalid");
    candidate.clearLayers();
    if (!position) {
      replace(coordsReadback);
      return;
    }
    replace(coordsReadback, readbackView(position, "declare-coords-position"));
    const ll = L.latLng(position.lat, position.lon);
    candidate.addLayer(
      L.circleMarker(ll, {
        pane: "draft",
        radius: 7,
        color: "#111827",
        weight: 2,
        dashArray: "3 3",
        fillOpacity: 0,
        interactive: false,
      }),
    );
    map.setView(ll, Math.max(map.getZoom(), 9));
  }

  async function readCoords() {
    const text = coords.value.trim();
    if (!text) {
      showTyped(null, null);
      return;
    }
    try {
      const data = await get(`/v1/coordinates?text=${encodeURIComponent(text)}`);
      if (coords.value.trim() === text) showTyped(data.position, null);
    } catch (err) {
      if (coords.value.trim() !== text) return; // typed on meanwhile: that answer is stale
      const problem = (err instanceof ApiError && err.problem) || {};
      const named = (problem.errors || []).find((e) => e.field === "text");
      showTyped(null, named ? named.message : err.message);
    }
  }

  function addTyped() {
    if (!typed) return;
    let geoms;
    try {
      geoms = parseGeometries(geojson.value);
    } catch {
      geoms = []; // a broken text is replaced, as by drawing
    }
    geoms.push({ type: "Point", coordinates: round([typed.lon, typed.lat]) });
    geojson.value = geometriesText(geoms);
    renderDraft();
    coords.value = "";
    const placed = typed;
    showTyped(null, null);
    replace(
      coordsReadback,
      h("div", { class: "hint", id: "declare-coords-added" }, "Added:"),
      readbackView(placed, "declare-coords-position"),
    );
  }

  coords.addEventListener("input", debounce(readCoords, 300));
  coords.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault(); // Enter here places the point; it does not send the form
    if (typed) addTyped();
    else readCoords();
  });
  coordsAdd.addEventListener("click", addTyped);
  buffer.addEventListener("input", debounce(renderDraft, 250));

  // ---- the request ----

  function buildBody() {
    const geoms = currentGeometries();
    if (geoms === null) return null;
    if (!geoms.length) {
      showFieldErrors([{ field: "volumes", message: "Draw or paste where this takes place." }]);
      return null;
    }
    let md = {};
    if (metadata.value.trim()) {
      try {
        md = JSON.parse(metadata.value);
      } catch (err) {
        showFieldErrors([{ field: "metadata", message: `Not valid JSON: ${err.message}` }]);
        return null;
      }
    }
    if (name.value.trim()) md = { ...md, name: name.value.trim() };
    const volume = (g) => ({
      geometry: g,
      buffer_m: numberOrNull(buffer) ?? 0,
      altitude: { lower_m: numberOrNull(lower), upper_m: numberOrNull(upper) },
      time: { start: toRfc3339(start.value), end: toRfc3339(end.value) },
    });
    const body = {
      kind,
      volumes: geoms.map(volume),
      key: [],
      category: category.value.trim(),
      metadata: md,
    };
    if (kind === "restriction") {
      body.restricts = {
        parties: [...restrictParties.querySelectorAll("input:checked")].map((i) => i.value),
        roles: [...restrictRoles.querySelectorAll("input:checked")].map((i) => i.value),
        allowed_categories: allowed.value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      };
    }
    return body;
  }

  function resetOutcome() {
    pendingKey = [];
    justification = null;
    replace(result);
    showProblem(null);
    showFieldErrors([]);
    setHighlight([]);
  }

  const FIELD_OF = [
    [/^volumes(\[\d+\])?\.geometry/, "geojson"],
    [/^volumes(\[\d+\])?\.buffer_m/, "buffer"],
    [/^volumes(\[\d+\])?\.altitude\.lower_m/, "lower"],
    [/^volumes(\[\d+\])?\.altitude\.upper_m/, "upper"],
    [/^volumes(\[\d+\])?\.altitude/, "lower"],
    [/^volumes(\[\d+\])?\.time\.start/, "start"],
    [/^volumes(\[\d+\])?\.time\.end/, "end"],
    [/^volumes(\[\d+\])?\.time/, "start"],
    [/^volumes/, "geojson"],
    [/^category/, "category"],
    [/^metadata\.name/, "name"],
    [/^metadata/, "metadata"],
    [/^restricts\.parties/, "restrict-parties"],
    [/^restricts\.roles/, "restrict-roles"],
    [/^restricts\.allowed_categories/, "allowed"],
  ];

  function showFieldErrors(errors) {
    for (const el of form.querySelectorAll(".field-error[id$='-error']")) {
      el.hidden = true;
      el.textContent = "";
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const unplaced = [];
    for (const e of errors) {
      const match = FIELD_OF.find(([re]) => re.test(e.field || ""));
      const target = match && form.querySelector(`#declare-${match[1]}-error`);
      if (!target) {
        unplaced.push(e);
        continue;
      }
      target.hidden = false;
      target.append(h("div", {}, e.field ? `${e.field}: ${e.message}` : e.message));
      const input = form.querySelector(`#declare-${match[1]}`);
      if (input) input.setAttribute("aria-invalid", "true");
    }
    return unplaced;
  }

  function showProblem(err) {
    const box = form.querySelector("#declare-problem");
    if (!err) {
      box.hidden = true;
      replace(box);
      return;
    }
    const p = err.problem || {};
    const unplaced = showFieldErrors(p.errors || []);
    replace(
      box,
      h("strong", {}, p.title || "The service refused this declaration"),
      h("div", {}, p.detail || err.message),
      unplaced.length
        ? h(
            "ul",
            {},
            unplaced.map((e) => h("li", {}, e.field ? `${e.field}: ${e.message}` : e.message)),
          )
        : null,
    );
    box.hidden = false;
  }

  /**
   * Send the declaration. `key` is given when the party confirms what it was shown: the
   * last body goes again with that key, and with the justification if one was asked for.
   * The service checks the key first (409 missing_awareness), then the justification of an
   * operation over a protected declaration (409 justification_required).
   */
  async function declare(key) {
    const body = lastBody && key ? { ...lastBody, key } : buildBody();
    if (!body) return;
    if (!key) {
      pendingKey = [];
      justification = null;
    }
    delete body.justification;
    if (justification) {
      const problem = justificationProblem(justification.input.value);
      if (problem) {
        justification.showError(problem);
        return;
      }
      body.justification = justification.input.value;
    }
    lastBody = body;
    submitBtn.disabled = true;
    checkBtn.disabled = true;
    showProblem(null);
    showFieldErrors([]);
    const outcome = result.firstChild;
    const sending = h("p", { class: "muted", id: "declare-sending" }, "Declaring…");
    if (justification) result.append(sending);
    else replace(result, sending);
    try {
      const data = await post("/v1/declarations", body);
      await succeeded(data);
      result.scrollIntoView({ block: "nearest" });
    } catch (err) {
      sending.remove();
      const problem = (err instanceof ApiError && err.problem) || {};
      if (err instanceof ApiError && err.code === "missing_awareness") {
        await explainConflicts(body, problem.missing || [], problem.conflicts || []);
        result.scrollIntoView({ block: "nearest" });
      } else if (err instanceof ApiError && err.code === "justification_required") {
        await explainConflicts(body, [], problem.conflicts || [], problem.protected || []);
        if (justification) justification.input.focus();
      } else if (justification && named(problem, "justification")) {
        // Refused for the justification itself: say so next to the box, keep the rest.
        if (outcome && !outcome.isConnected) replace(result, outcome);
        justification.showError(named(problem, "justification"));
      } else {
        replace(result);
        showProblem(err);
        form.querySelector("#declare-problem").scrollIntoView({ block: "nearest" });
      }
    } finally {
      submitBtn.disabled = false;
      checkBtn.disabled = false;
    }
  }

  /** The message of the problem's error about `field`, if any. */
  function named(problem, field) {
    const found = (problem.errors || []).find((e) => (e.field || "") === field);
    return found ? found.message || "Not accepted." : null;
  }

  /**
   * Explain a refusal: the declarations missed from the key (to confirm), and apart from
   * them the protected ones in the way, with the justification box.
   */
  async function explainConflicts(body, missing, conflicts, required = []) {
    const guarded =
      body.kind === "operation" ? protectedRefs(required, conflicts, missing) : [];
    const guardedIds = new Set(guarded.map((r) => r.id));
    const ids = [...new Set([...missing.map((m) => m.id), ...guarded.map((r) => r.id)])];
    const fetched = new Map(
      await Promise.all(ids.map(async (id) => [id, await fetchDecl(id).catch(() => null)])),
    );
    pendingKey = [...new Set([...(body.key || []), ...missing.map((m) => m.version)])];
    const n = missing.length;
    const what = KIND_LABEL[body.kind].toLowerCase();
    const others = missing.filter((m) => !guardedIds.has(m.id));
    const text = justification ? justification.input.value : justificationText;
    justification = guarded.length
      ? protectedBox(
          guarded,
          guarded.map((r) => fetched.get(r.id)),
          {
            text,
            onInput: (value) => {
              justificationText = value;
            },
            onSelect: (id) => {
              select(id);
              layers.focus([id], { maxZoom: 14 });
            },
          },
        )
      : null;
    const confirm = h(
      "button",
      { type: "button", class: "btn btn-primary", id: n ? "awareness-confirm" : "justification-confirm" },
      n
        ? guarded.length
          ? "I have seen these; declare with this justification"
          : "I have seen these; declare"
        : "Declare with this justification",
    );
    confirm.addEventListener("click", () => declare(pendingKey));
    setHighlight(ids);
    if (ids.length) layers.focus(ids, { maxZoom: 13 });
    const item = (m) =>
      h(
        "li",
        { class: "conflict-item", dataset: { declId: m.id } },
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: () => {
              select(m.id);
              layers.focus([m.id], { maxZoom: 14 });
            },
          },
          kindChip(m.kind),
          " ",
          fetched.get(m.id) ? declTitle(fetched.get(m.id)) : m.id,
        ),
        h("div", { class: "muted" }, "version ", h("code", {}, m.version)),
      );
    replace(
      result,
      h(
        "div",
        { class: "declare-outcome", id: "declare-outcome" },
        n
          ? h(
              "div",
              { class: "awareness", id: "awareness", role: "alert" },
              h("h3", {}, "Please confirm what you are aware of"),
              h(
                "p",
                { id: "awareness-text" },
                `Your ${what} conflicts with ${n} declaration${n > 1 ? "s" : ""} you have not acknowledged seeing: `,
                missing.map((m, i) => [
                  h("strong", {}, declPhrase(fetched.get(m.id), m)),
                  i < n - 2 ? ", " : i === n - 2 ? " and " : ".",
                ]),
              ),
              others.length ? h("ul", { class: "conflicts", id: "awareness-list" }, others.map(item)) : null,
              h(
                "p",
                { class: "muted" },
                guarded.length
                  ? "They are outlined in amber on the map; the protected ones are listed below. Declaring now records that you have seen their current versions."
                  : "They are outlined in amber on the map. Declaring now records that you have seen their current versions.",
              ),
            )
          : null,
        justification ? justification.box : null,
        h(
          "div",
          { class: "btn-row" },
          confirm,
          h("button", { type: "button", class: "btn", onclick: () => resetOutcome() }, "Cancel"),
        ),
      ),
    );
  }

  async function succeeded(data) {
    const decl = data.declaration;
    const conflicts = data.conflicts || [];
    const guardedIds = new Set(
      decl.kind === "operation" ? protectedRefs([], conflicts).map((r) => r.id) : [],
    );
    const guarded = conflicts.filter((c) => guardedIds.has(c.declaration.id));
    const rest = conflicts.filter((c) => !guardedIds.has(c.declaration.id));
    setHighlight([]);
    pendingKey = [];
    lastBody = null;
    justification = null;
    justificationText = "";
    emit("receipt", { what: `declared ${declTitle(decl)}`, receipt: data.receipt });
    clearGeometry();
    try {
      await loadDeclarations();
    } catch {
      // The declaration is accepted; the map catches up on the next refresh.
    }
    select(decl.id);
    replace(
      result,
      h(
        "div",
        { class: "success", id: "declare-success" },
        h("h3", {}, `${KIND_LABEL[decl.kind]} declared`),
        h(
          "p",
          {},
          "Version ",
          h("code", {}, decl.version),
          data.receipt ? ` · record entry #${data.receipt.index}` : "",
        ),
        decl.position
          ? h(
              "div",
              { class: "declared-position" },
              h("div", { class: "muted" }, "Where (first volume), as the service read it:"),
              readbackView(decl.position, "declare-success-position"),
            )
          : null,
        decl.late_notice
          ? h(
              "p",
              {},
              h("span", { class: "badge badge-late" }, "late notice"),
              " It starts sooner than the policy's minimum notice; this is flagged to every recipient and in the record.",
            )
          : null,
        conflicts.length
          ? [
              h(
                "p",
                { class: "conflict-lead" },
                `It conflicts with ${conflicts.length} declaration${conflicts.length > 1 ? "s" : ""}:`,
              ),
              guarded.length
                ? h(
                    "div",
                    { class: "protected-box protected-done", id: "declare-protected" },
                    h("h3", {}, `⚠ Protected (${guarded.length})`),
                    h(
                      "p",
                      {},
                      "Their owners and the coordinator have been alerted. Your justification is in the record.",
                    ),
                    h("ul", { class: "conflicts" }, guarded.map(conflictItem)),
                  )
                : null,
              rest.length
                ? h("ul", { class: "conflicts", id: "declare-conflicts" }, rest.map(conflictItem))
                : null,
            ]
          : h("p", {}, "No conflicts with declarations you can see."),
      ),
    );
  }

  async function check() {
    const body = buildBody();
    if (!body) return;
    showProblem(null);
    try {
      const data = await post("/v1/conflicts/check", { kind: body.kind, volumes: body.volumes });
      const conflicts = data.conflicts || [];
      const guardedIds = new Set(
        body.kind === "operation" ? protectedRefs([], conflicts).map((r) => r.id) : [],
      );
      const guarded = conflicts.filter((c) => guardedIds.has(c.declaration.id));
      const rest = conflicts.filter((c) => !guardedIds.has(c.declaration.id));
      setHighlight(conflicts.map((c) => c.declaration.id));
      if (conflicts.length)
        layers.focus(
          conflicts.map((c) => c.declaration.id),
          { maxZoom: 13 },
        );
      replace(
        result,
        h(
          "div",
          { class: "check-result" },
          h(
            "p",
            {},
            conflicts.length
              ? `This would conflict with ${conflicts.length} declaration${conflicts.length > 1 ? "s" : ""} (outlined in amber):`
              : "No conflicts with declarations you can see.",
          ),
          guarded.length
            ? h(
                "div",
                { class: "protected-box protected-done", id: "check-protected" },
                h("h3", {}, `⚠ Protected (${guarded.length})`),
                h(
                  "p",
                  {},
                  "Declaring this operation will need a written justification, and will alert their owners and the coordinator.",
                ),
                h("ul", { class: "conflicts" }, guarded.map(conflictItem)),
              )
            : null,
          rest.length ? h("ul", { class: "conflicts" }, rest.map(conflictItem)) : null,
        ),
      );
    } catch (err) {
      showProblem(err);
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    declare(null);
  });
  checkBtn.addEventListener("click", check);
  for (const input of [name, category, geojson, buffer, lower, upper, start, end, metadata]) {
    input.addEventListener("input", () => {
      if (pendingKey.length || lastBody) {
        // The request changed: what was confirmed no longer applies to it.
        lastBody = null;
        pendingKey = [];
        justification = null;
        replace(result);
        setHighlight([]);
      }
    });
  }

  on("parties", drawParties);
  on("tab", (tab) => {
    if (tab !== "declare") map.pm.disableDraw();
  });
  drawParties();
  applyKind();
}
