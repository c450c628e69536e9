// Entry point: the login form, the header, the tabs and the map.

/* global L */

import { mountAlerts, unansweredAlertCount } from "./alerts.js";
import { ApiError, forgetToken, get, onUnauthorized, storedToken, storeToken } from "./api.js";
import { addBasemap } from "./basemap.js";
import { mountDeclarations, mountDetail } from "./declarations.js";
import { mountDeclare } from "./declare.js";
import { h, replace, toast } from "./dom.js";
import { IMPORTERS, mountExport, mountImport } from "./import.js";
import { mountInbox, pollInbox, startPolling, stopPolling, unacknowledgedCount } from "./inbox.js";
import { DeclarationLayers } from "./layers.js";
import { mountRecord } from "./record.js";
import {
  DECLARABLE,
  emit,
  KIND_LABEL,
  KINDS,
  loadDeclarations,
  loadParties,
  loadPolicy,
  on,
  state,
} from "./state.js";
import { mountTimeline } from "./timeline.js";

const DECLS_REFRESH_MS = 30000;
const ROLE_LABEL = {
  operator: "Operator",
  humanitarian: "Humanitarian",
  coordinator: "Coordinator",
  observer: "Observer",
};

const $ = (id) => document.getElementById(id);

// ---- login --------------------------------------------------------------------------

function showLogin(message = null) {
  $("app").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("login-token").focus();
}

async function whoAmI(token) {
  return get("/v1/me", { token });
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = $("login-token").value.trim();
  if (!token) return;
  const button = $("login-submit");
  button.disabled = true;
  try {
    const me = await whoAmI(token);
    storeToken(token);
    $("login-token").value = "";
    await startApp(me);
  } catch (err) {
    showLogin(
      err instanceof ApiError && err.status === 401
        ? "This token is not accepted. Check it with your coordinator."
        : `Could not log in: ${err.message}`,
    );
  } finally {
    button.disabled = false;
  }
});

function logout(message = null) {
  stopPolling();
  emit("logout");
  forgetToken();
  // A fresh page is the surest way to leave nothing of the last party behind.
  if (message) sessionStorage.setItem("deconflict.loginMessage", message);
  window.location.reload();
}

onUnauthorized(() => {
  // Only once logged in: a refused token at the login form is answered there.
  if (started) logout("Your session has ended: the token is no longer accepted.");
});

// ---- the application ----------------------------------------------------------------

let started = false;

async function startApp(me) {
  if (started) return;
  started = true;
  state.me = me;
  $("login").hidden = true;
  $("app").hidden = false;
  $("party-name").textContent = me.name;
  const role = $("party-role");
  role.textContent = ROLE_LABEL[me.role] || me.role;
  role.className = `role-badge role-${me.role}`;
  $("logout").addEventListener("click", () => logout());
  tickClock();
  setInterval(tickClock, 20000);

  let tileUrl;
  try {
    const config = await get("/v1/config");
    tileUrl = (config && config.tile_url) || null;
  } catch {
    tileUrl = null; // the offline basemap is always there
  }
  state.tileUrl = tileUrl;

  L.PM.setOptIn(true); // Geoman leaves our declaration layers alone.
  const map = L.map("map", {
    zoomControl: true,
    worldCopyJump: true,
    minZoom: 2,
    maxZoom: 17,
    zoomSnap: 0.25,
    pmIgnore: false, // with opt-in, Geoman serves only the map (for drawing)
  }).setView([34.8, 38.5], 6);
  map.attributionControl.setPrefix(false);
  // The map's box changes when the timeline or the window does: keep Leaflet's idea of
  // its size true, or clicks land off the cursor.
  new ResizeObserver(() => map.invalidateSize({ pan: false })).observe($("map"));
  L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);
  addBasemap(map, tileUrl);
  addCursorReadout(map);
  const legend = addLegend(map);

  const layers = new DeclarationLayers(map);
  window.__deconflict = { map, state, layers }; // for tests and the curious: no secrets here

  mountTimeline($("timeline"));
  mountDeclarations($("panel-declarations"), layers);
  mountDetail($("detail"), layers);
  mountInbox($("panel-inbox"));
  mountAlerts($("panel-alerts"));
  mountRecord($("panel-record"));
  if ((DECLARABLE[me.role] || []).length) mountDeclare($("panel-declare"), map, layers);
  else $("tab-declare").hidden = true;
  mountExport($("panel-declarations"));
  if (IMPORTERS.includes(me.role)) {
    mountImport($("panel-import"), map);
    $("tab-import").hidden = false;
  }
  setupTabs();

  on("focus", (ids) => layers.focus(ids));
  on("inbox", updateInboxCount);
  $("alerts-banner").addEventListener("click", () => openTab("alerts"));
  on("decls", ({ firstLoad }) => {
    legend.update();
    if (firstLoad) {
      const bounds = layers.allBounds();
      if (bounds) map.fitBounds(bounds.pad(0.08), { animate: false });
    }
    document.body.dataset.loaded = "true";
  });
  on("select", (id) => {
    if (!id) return;
    if (
      state.decls.has(id) &&
      !map.getBounds().intersects(layers.boundsOf([id]) || map.getBounds())
    ) {
      layers.focus([id]);
    }
  });

  try {
    await Promise.all([loadParties(), loadPolicy()]);
    await Promise.all([loadDeclarations(), pollInbox()]);
  } catch (err) {
    toast(`Could not load everything: ${err.message}`, "error");
  }
  updateInboxCount();
  startPolling();
  setInterval(refreshIfChanged, DECLS_REFRESH_MS);
  setInterval(() => loadParties().catch(() => {}), 5 * DECLS_REFRESH_MS);
}

let lastHeadSize = null;

/** Reload the picture only when the record has grown: every accepted change is logged. */
async function refreshIfChanged() {
  try {
    const head = await get("/v1/log/head");
    if (head.size === lastHeadSize) return;
    lastHeadSize = head.size;
    await loadDeclarations();
  } catch {
    // The next tick tries again; a 401 has already sent the page back to the login form.
  }
}

function tickClock() {
  const now = new Date();
  $("clock").textContent = `${now.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function updateInboxCount() {
  const n = unacknowledgedCount();
  const badge = $("inbox-count");
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.title = `${n} to acknowledge`;
  // Alerts are counted apart and shown in the header too, so that none goes unseen.
  const a = unansweredAlertCount();
  const count = $("alerts-count");
  count.hidden = a === 0;
  count.textContent = String(a);
  count.title = `${a} alert${a === 1 ? "" : "s"} to answer`;
  const banner = $("alerts-banner");
  banner.hidden = a === 0;
  $("alerts-banner-text").textContent = `${a} alert${a === 1 ? "" : "s"} to answer`;
}

let openTab = () => {};

function setupTabs() {
  const tabs = [...document.querySelectorAll(".tab")];
  const open = (name) => {
    for (const t of tabs) {
      const on = t.dataset.tab === name;
      t.classList.toggle("is-on", on);
      t.setAttribute("aria-selected", on ? "true" : "false");
      $(`panel-${t.dataset.tab}`).hidden = !on;
    }
    emit("tab", name);
  };
  for (const t of tabs) t.addEventListener("click", () => open(t.dataset.tab));
  openTab = open;
  open("declarations");
}

function addLegend(map) {
  const control = L.control({ position: "bottomleft" });
  let body = null;
  let collapsed = false;
  control.onAdd = () => {
    body = h("div", { class: "legend", id: "legend" });
    L.DomEvent.disableClickPropagation(body);
    return body;
  };
  control.addTo(map);
  control.update = () => {
    const present = new Set([...state.decls.values()].map((d) => d.kind));
    for (const k of DECLARABLE[state.me.role] || []) present.add(k);
    const item = (swatch, label) =>
      h("div", { class: "legend-item" }, swatch, h("span", {}, label));
    const toggle = h(
      "button",
      {
        type: "button",
        class: "legend-title",
        "aria-expanded": collapsed ? "false" : "true",
        onclick: () => {
          collapsed = !collapsed;
          control.update();
        },
      },
      `Legend ${collapsed ? "▸" : "▾"}`,
    );
    if (collapsed) {
      replace(body, toggle);
      return;
    }
    replace(
      body,
      toggle,
      h(
        "div",
        { class: "legend-grid" },
        KINDS.filter((k) => present.has(k)).map((k) =>
          item(
            h("span", { class: `lg lg-${k}` }),
            k === "movement" ? "Movement corridor" : KIND_LABEL[k],
          ),
        ),
        item(h("span", { class: "lg lg-conflict" }), "In conflict"),
        item(h("span", { class: "lg lg-badge" }, "⚠"), "Number of conflicts"),
        item(h("span", { class: "lg lg-called" }), "To confirm (awareness)"),
        item(h("span", { class: "lg lg-dim" }), "Not active at the time"),
      ),
      present.has("site")
        ? h(
            "div",
            { class: "legend-note" },
            "Sites: H hospital · S school · W warehouse · C camp · ≈ water",
          )
        : null,
    );
  };
  control.update();
  return control;
}

function addCursorReadout(map) {
  const control = L.control({ position: "bottomright" });
  let el = null;
  control.onAdd = () => {
    el = h("div", { class: "cursor-readout" }, "");
    return el;
  };
  control.addTo(map);
  map.on("mousemove", (e) => {
    el.textContent = `${e.latlng.lat.toFixed(4)}, ${e.latlng.lng.toFixed(4)}`;
  });
  map.on("mouseout", () => {
    el.textContent = "";
  });
}

// ---- start ----------------------------------------------------------------------------

async function boot() {
  const message = sessionStorage.getItem("deconflict.loginMessage");
  sessionStorage.removeItem("deconflict.loginMessage");
  const token = storedToken();
  if (!token) {
    showLogin(message);
    return;
  }
  try {
    const me = await whoAmI(token);
    await startApp(me);
  } catch (err) {
    forgetToken();
    showLogin(err instanceof ApiError && err.status === 401 ? null : err.message);
  }
}

boot();
