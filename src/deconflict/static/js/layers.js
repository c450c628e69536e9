// Declarations on the map: one style per kind, buffers drawn to scale (a Point with a
// buffer is a circle, a LineString with a buffer a corridor), conflicts in red with a badge.
// State (dimmed, in conflict, selected, called out) is a CSS class on each SVG path, so a
// change of time or selection restyles without rebuilding the layers.

/* global L */

import { h } from "./dom.js";
import {
  currentConflicts,
  declTitle,
  isEmphasised,
  KIND_LABEL,
  KINDS,
  on,
  partyName,
  protectionAlertsFor,
  select,
  state,
} from "./state.js";
import { fmtWindow } from "./dom.js";

export const KIND_STYLE = {
  operation: { color: "#1e4fd8", fill: "#3b82f6", fillOpacity: 0.16 },
  site: { color: "#0f7a3d", fill: "#22c55e", fillOpacity: 0.14 },
  movement: { color: "#b45309", fill: "#f59e0b", fillOpacity: 0.3 },
  restriction: { color: "#7e22ce", fill: "url(#dc-hatch)", fillOpacity: 1 },
};

const PANE_Z = { restriction: 410, operation: 420, movement: 430, site: 440 };

const SITE_GLYPH = {
  hospital: "H",
  clinic: "H",
  "health centre": "H",
  school: "S",
  warehouse: "W",
  camp: "C",
  "water point": "≈",
  water: "≈",
  shelter: "C",
};

/** Metres per screen pixel in Web Mercator at a latitude and zoom. */
function metresPerPixel(lat, zoom) {
  return (40075016.686 * Math.cos((lat * Math.PI) / 180)) / 2 ** (zoom + 8);
}

function latLngs(coords, depth) {
  return L.GeoJSON.coordsToLatLngs(coords, depth);
}

function ensureHatch() {
  if (document.getElementById("dc-hatch")) return;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "0");
  svg.setAttribute("height", "0");
  svg.setAttribute("aria-hidden", "true");
  svg.style.position = "absolute";
  const defs = document.createElementNS(ns, "defs");
  const pattern = document.createElementNS(ns, "pattern");
  pattern.setAttribute("id", "dc-hatch");
  pattern.setAttribute("patternUnits", "userSpaceOnUse");
  pattern.setAttribute("width", "9");
  pattern.setAttribute("height", "9");
  pattern.setAttribute("patternTransform", "rotate(45)");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", "9");
  bg.setAttribute("height", "9");
  bg.setAttribute("fill", "rgba(168, 85, 247, 0.10)");
  const line = document.createElementNS(ns, "line");
  line.setAttribute("x1", "0");
  line.setAttribute("y1", "0");
  line.setAttribute("x2", "0");
  line.setAttribute("y2", "9");
  line.setAttribute("stroke", "rgba(126, 34, 206, 0.55)");
  line.setAttribute("stroke-width", "2");
  pattern.append(bg, line);
  defs.append(pattern);
  svg.append(defs);
  document.body.append(svg);
}

export class DeclarationLayers {
  constructor(map) {
    this.map = map;
    this.entries = new Map(); // id -> {decl, layers: [{layer, part}], badge, group}
    ensureHatch();
    for (const kind of KINDS) {
      const pane = map.createPane(`decl-${kind}`);
      pane.style.zIndex = PANE_Z[kind];
    }
    map.createPane("badges").style.zIndex = 640;
    this.root = L.layerGroup().addTo(map);
    map.on("zoomend", () => this.resizeCorridors());
    on("decls", () => this.render());
    on("time", () => this.restyle());
    on("select", () => this.restyle());
    on("highlight", () => this.restyle());
    on("inbox", () => this.restyle());
  }

  render() {
    this.root.clearLayers();
    this.entries.clear();
    const order = [...state.decls.values()].sort(
      (a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind),
    );
    for (const decl of order) this.add(decl);
    this.resizeCorridors();
    this.restyle();
  }

  add(decl) {
    const kind = KIND_STYLE[decl.kind] ? decl.kind : "operation";
    const style = KIND_STYLE[kind];
    const pane = `decl-${kind}`;
    const parts = [];
    const base = {
      pane,
      color: style.color,
      weight: 2,
      opacity: 0.95,
      fillColor: style.fill,
      fillOpacity: style.fillOpacity,
    };
    for (const volume of decl.volumes || []) {
      const g = volume.geometry || {};
      const buffer = Number(volume.buffer_m) || 0;
      if (g.type === "Point" || g.type === "MultiPoint") {
        const points = g.type === "Point" ? [g.coordinates] : g.coordinates;
        for (const c of points) {
          const ll = L.latLng(c[1], c[0]);
          if (buffer > 0) {
            parts.push({
              part: "outline",
              layer: L.circle(ll, {
                ...base,
                radius: buffer,
                dashArray: kind === "site" ? "5 4" : null,
              }),
            });
          }
          parts.push({ part: "symbol", layer: this.symbol(decl, kind, ll, pane) });
        }
      } else if (g.type === "LineString" || g.type === "MultiLineString") {
        const lls = latLngs(g.coordinates, g.type === "LineString" ? 0 : 1);
        if (buffer > 0) {
          parts.push({
            part: "corridor",
            buffer,
            layer: L.polyline(lls, {
              pane,
              color: style.fill === "url(#dc-hatch)" ? style.color : style.fill,
              opacity: 0.32,
              weight: 6,
              lineCap: "round",
              lineJoin: "round",
              fill: false,
            }),
          });
        }
        parts.push({
          part: "outline",
          layer: L.polyline(lls, { ...base, fill: false, weight: 2.5, dashArray: "8 5" }),
        });
      } else if (g.type === "Polygon" || g.type === "MultiPolygon") {
        const lls = latLngs(g.coordinates, g.type === "Polygon" ? 1 : 2);
        if (buffer > 0) {
          // The buffer around a polygon: its rings stroked at twice the buffer width.
          parts.push({
            part: "corridor",
            buffer,
            layer: L.polygon(lls, {
              pane,
              color: style.color,
              opacity: 0.15,
              weight: 6,
              fill: false,
              lineJoin: "round",
            }),
          });
        }
        parts.push({
          part: "outline",
          layer: L.polygon(lls, {
            ...base,
            dashArray: kind === "restriction" ? "10 5" : null,
            weight: kind === "restriction" ? 2.5 : 2,
          }),
        });
      }
    }
    const group = L.featureGroup(parts.map((p) => p.layer));
    group.on("click", (e) => {
      L.DomEvent.stopPropagation(e);
      select(decl.id);
    });
    group.bindTooltip(() => this.tooltip(decl), { sticky: true, className: "dc-tooltip" });
    group.addTo(this.root);
    const entry = { decl, parts, group, badge: null };
    this.entries.set(decl.id, entry);
    for (const p of parts) {
      const el = p.layer.getElement && p.layer.getElement();
      if (el) el.classList.add("dc-part", `part-${p.part}`, `kind-${kind}`);
    }
  }

  symbol(decl, kind, latlng, pane) {
    if (kind === "site") {
      const category = (decl.category || "").toLowerCase().replace(/[-_]+/g, " ").trim();
      const glyph = SITE_GLYPH[category] || "+";
      const icon = L.divIcon({
        className: "dc-site-icon",
        html: "",
        iconSize: [20, 20],
        iconAnchor: [10, 10],
      });
      const marker = L.marker(latlng, { icon, pane, keyboard: false, riseOnHover: true });
      marker.on("add", () => {
        const el = marker.getElement();
        if (el) {
          el.textContent = glyph;
          el.dataset.declId = decl.id;
        }
      });
      return marker;
    }
    const style = KIND_STYLE[kind];
    return L.circleMarker(latlng, {
      pane,
      radius: 5,
      color: "#ffffff",
      weight: 1.5,
      fillColor: style.color,
      fillOpacity: 1,
    });
  }

  tooltip(decl) {
    const conflicts = (state.conflicts.get(decl.id) || []).length;
    return h(
      "div",
      { class: "tt" },
      h("div", { class: "tt-title" }, declTitle(decl)),
      h(
        "div",
        { class: "tt-sub" },
        `${KIND_LABEL[decl.kind] || decl.kind} · ${partyName(decl.owner)}`,
      ),
      decl.volumes && decl.volumes[0]
        ? h(
            "div",
            { class: "tt-sub" },
            fmtWindow(decl.volumes[0].time.start, decl.volumes[0].time.end),
          )
        : null,
      conflicts
        ? h("div", { class: "tt-conflict" }, `${conflicts} conflict${conflicts > 1 ? "s" : ""}`)
        : null,
    );
  }

  resizeCorridors() {
    const zoom = this.map.getZoom();
    for (const entry of this.entries.values()) {
      for (const p of entry.parts) {
        if (p.part !== "corridor") continue;
        const lat = p.layer.getBounds().getCenter().lat;
        const px = (2 * p.buffer) / metresPerPixel(lat, zoom);
        // At small scales a corridor keeps a visible width around its centre line.
        p.layer.setStyle({ weight: Math.max(7, Math.min(px, 4000)) });
      }
    }
  }

  /** Apply time, conflict, selection and call-out classes. */
  restyle() {
    for (const [id, entry] of this.entries) {
      const emph = isEmphasised(entry.decl);
      const conflicts = emph ? currentConflicts(id) : [];
      const inConflict = conflicts.length > 0;
      const selected = state.selectedId === id;
      const called = state.highlight.has(id);
      const alerted = protectionAlertsFor(id).some((n) => n.change !== "withdrawn");
      for (const p of entry.parts) {
        const el = p.layer.getElement && p.layer.getElement();
        if (!el) continue;
        el.classList.toggle("is-dim", !emph && !selected && !called);
        el.classList.toggle("is-conflict", inConflict);
        el.classList.toggle("is-selected", selected);
        el.classList.toggle("is-called", called);
        // A protected declaration with an alert about an operation this party may not see.
        el.classList.toggle("is-alerted", alerted);
      }
      // A site in conflict turns red itself; a badge on each would bury the city in badges.
      const badged = inConflict && entry.decl.kind !== "site";
      this.setBadge(entry, badged ? conflicts.length : 0);
      if (selected || called) entry.group.eachLayer((l) => l.bringToFront && l.bringToFront());
    }
  }

  setBadge(entry, count) {
    if (!count) {
      if (entry.badge) {
        entry.badge.remove();
        entry.badge = null;
      }
      return;
    }
    if (!entry.badge) {
      const icon = L.divIcon({ className: "dc-badge", html: "", iconSize: null });
      const at = anchorOf(entry.decl);
      if (!at) return;
      entry.badge = L.marker(at, { icon, pane: "badges", keyboard: false });
      entry.badge.on("click", () => select(entry.decl.id));
      entry.badge.addTo(this.root);
    }
    const el = entry.badge.getElement();
    if (el) {
      el.textContent = `⚠ ${count}`;
      el.title = `${count} conflict${count > 1 ? "s" : ""}`;
      el.dataset.declId = entry.decl.id;
    }
  }

  boundsOf(ids) {
    let bounds = null;
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (!entry) continue;
      const b = entry.group.getBounds();
      if (!b.isValid()) continue;
      bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast());
    }
    return bounds;
  }

  /** Pan and zoom so that the given declarations are in view. */
  focus(ids, { maxZoom = 12 } = {}) {
    const bounds = this.boundsOf(ids);
    if (!bounds) return;
    // Keep clear of the detail panel, which covers the right of the map.
    const detail = document.getElementById("detail");
    const right = detail && !detail.hidden ? detail.offsetWidth + 24 : 30;
    this.map.fitBounds(bounds, {
      maxZoom,
      animate: false,
      paddingTopLeft: [40, 40],
      paddingBottomRight: [right, 40],
    });
  }

  allBounds() {
    return this.boundsOf([...this.entries.keys()]);
  }
}

/** Where the conflict badge sits: the first point, a line's middle vertex, a polygon's centre. */
function anchorOf(decl) {
  const v = (decl.volumes || [])[0];
  if (!v || !v.geometry) return null;
  const g = v.geometry;
  const c = g.coordinates;
  try {
    if (g.type === "Point") return L.latLng(c[1], c[0]);
    if (g.type === "MultiPoint") return L.latLng(c[0][1], c[0][0]);
    if (g.type === "LineString") {
      const m = c[Math.floor(c.length / 2)];
      return L.latLng(m[1], m[0]);
    }
    if (g.type === "MultiLineString") {
      const m = c[0][Math.floor(c[0].length / 2)];
      return L.latLng(m[1], m[0]);
    }
    if (g.type === "Polygon") return L.polygon(latLngs(c, 1)).getBounds().getCenter();
    if (g.type === "MultiPolygon") return L.polygon(latLngs(c[0], 1)).getBounds().getCenter();
  } catch {
    return null;
  }
  return null;
}
