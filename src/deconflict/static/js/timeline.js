// The timeline under the map: a slider over the span of the declarations, an activity strip
// (how many declarations are active, and in conflict, at each moment) and a "Show all" toggle.

import { fmtTimeShort, h, replace } from "./dom.js";
import { activeAt, conflictAt, on, setShowAll, setTime, state } from "./state.js";

const STEP_MS = 15 * 60 * 1000;
const BUCKETS = 160;

export function mountTimeline(root) {
  const showAll = h("input", { type: "checkbox", id: "show-all" });
  const slider = h("input", {
    type: "range",
    id: "time-slider",
    class: "time-slider",
    min: "0",
    max: "1",
    step: "1",
    "aria-label": "Time",
  });
  const label = h("output", { id: "time-label", class: "time-label", for: "time-slider" });
  const count = h("span", { class: "time-count", id: "time-count" });
  const strip = h("canvas", { class: "time-strip", height: "26", "aria-hidden": "true" });
  const startLabel = h("span", { class: "time-edge" });
  const endLabel = h("span", { class: "time-edge time-edge-end" });
  const back = h("button", { type: "button", class: "btn btn-icon", title: "Back 1 hour" }, "‹");
  const fwd = h("button", { type: "button", class: "btn btn-icon", title: "Forward 1 hour" }, "›");
  const now = h("button", { type: "button", class: "btn btn-small" }, "Now");

  replace(
    root,
    h(
      "div",
      { class: "time-controls" },
      h("label", { class: "switch", for: "show-all" }, showAll, h("span", {}, "Show all times")),
      h("div", { class: "time-now" }, back, label, fwd, now),
      count,
    ),
    h("div", { class: "time-track" }, strip, slider),
    h("div", { class: "time-edges" }, startLabel, endLabel),
  );

  const toMs = (v) => state.span.start + Number(v) * STEP_MS;
  const fromMs = (ms) => Math.round((ms - state.span.start) / STEP_MS);

  slider.addEventListener("input", () => setTime(toMs(slider.value)));
  showAll.addEventListener("change", () => setShowAll(showAll.checked));
  back.addEventListener("click", () => setTime(clamp(state.time - 3600000)));
  fwd.addEventListener("click", () => setTime(clamp(state.time + 3600000)));
  now.addEventListener("click", () => setTime(clamp(Date.now())));

  function clamp(ms) {
    return Math.min(Math.max(ms, state.span.start), state.span.end);
  }

  function sync() {
    slider.max = String(Math.max(1, fromMs(state.span.end)));
    slider.value = String(fromMs(state.time));
    showAll.checked = state.showAll;
    root.classList.toggle("is-all", state.showAll);
    label.textContent = fmtTimeShort(state.time);
    startLabel.textContent = fmtTimeShort(state.span.start);
    endLabel.textContent = fmtTimeShort(state.span.end);
    let active = 0;
    for (const d of state.decls.values()) if (activeAt(d, state.time)) active += 1;
    count.textContent = state.showAll
      ? `${state.decls.size} declarations, all times`
      : `${active} of ${state.decls.size} active`;
  }

  function drawStrip() {
    const width = strip.clientWidth || 600;
    const dpr = window.devicePixelRatio || 1;
    strip.width = Math.round(width * dpr);
    strip.height = Math.round(26 * dpr);
    const ctx = strip.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, width, 26);
    const { start, end } = state.span;
    const dt = (end - start) / BUCKETS;
    const counts = [];
    const conflicted = [];
    for (let i = 0; i < BUCKETS; i++) {
      const t = start + (i + 0.5) * dt;
      let n = 0;
      let c = 0;
      for (const d of state.decls.values()) {
        if (!activeAt(d, t)) continue;
        n += 1;
        if ((state.conflicts.get(d.id) || []).some((x) => conflictAt(x, t))) c += 1;
      }
      counts.push(n);
      conflicted.push(c);
    }
    const max = Math.max(1, ...counts);
    const bw = width / BUCKETS;
    for (let i = 0; i < BUCKETS; i++) {
      const hAll = (counts[i] / max) * 22;
      const hC = (conflicted[i] / max) * 22;
      ctx.fillStyle = "#b9c6d3";
      ctx.fillRect(i * bw, 26 - hAll, Math.max(1, bw - 0.5), hAll);
      ctx.fillStyle = "#dc2626";
      ctx.fillRect(i * bw, 26 - hC, Math.max(1, bw - 0.5), hC);
    }
    // Day boundaries (UTC midnight).
    ctx.fillStyle = "#64748b";
    const day = 86400000;
    for (let t = Math.ceil(start / day) * day; t < end; t += day) {
      const x = ((t - start) / (end - start)) * width;
      ctx.fillRect(x, 0, 1, 26);
    }
  }

  on("decls", () => {
    sync();
    drawStrip();
  });
  on("time", sync);
  window.addEventListener("resize", drawStrip);
  sync();
}
