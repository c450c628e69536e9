// The declare flow's protection part: the protected declarations an operation conflicts
// with, shown apart from the other conflicts, and the justification box that writing such an
// operation requires (API.md v1.1 "Justification": 1 to 2,000 characters).

import { kindChip } from "./declarations.js";
import { h } from "./dom.js";
import { declTitle, isProtectedKind, partyName } from "./state.js";

export const MAX_JUSTIFICATION = 2000;

/**
 * Declaration references ({id, kind, owner, version}), once each: all of `named` (the
 * service's `protected` list, which it knows best), then those of `lists` (conflicts or
 * references) whose kind the policy protects.
 */
export function protectedRefs(named, ...lists) {
  const seen = new Map();
  const add = (item, check) => {
    const ref = item && item.declaration ? item.declaration : item;
    if (ref && ref.id && (!check || isProtectedKind(ref.kind)) && !seen.has(ref.id)) {
      seen.set(ref.id, ref);
    }
  };
  for (const item of named || []) add(item, false);
  for (const list of lists) for (const item of list || []) add(item, true);
  return [...seen.values()];
}

/**
 * Why a justification is not sent, or null when it may be. Only an empty one is stopped
 * here (a click with nothing written, answered without a round trip); its length is the
 * service's to judge (the box's `maxlength` keeps typing within it).
 */
export function justificationProblem(text) {
  if (!text.trim()) return "Write why this operation must go ahead; it cannot be empty.";
  return null;
}

/**
 * The box listing the protected declarations (with `decls[i]` the loaded declaration of
 * `refs[i]`, or null) and the justification field. `text` is what was written so far;
 * `onInput(text)` keeps it when the box is drawn again.
 */
export function protectedBox(refs, decls, { text, onInput, onSelect }) {
  const n = refs.length;
  const input = h("textarea", {
    id: "declare-justification",
    class: "input",
    rows: "4",
    maxlength: String(MAX_JUSTIFICATION),
    required: true,
    "aria-required": "true",
    "aria-describedby": "declare-justification-help declare-justification-count declare-justification-error",
    placeholder: "For example: the military objective, why no other place or time will do, and the precautions taken.",
  });
  input.value = text || "";
  const count = h("div", { class: "hint counter", id: "declare-justification-count", "aria-live": "polite" });
  const error = h("div", { class: "field-error", id: "declare-justification-error", role: "alert", hidden: true });
  const updateCount = () => {
    const n = input.value.length;
    count.textContent = `${n.toLocaleString("en-GB")} / ${MAX_JUSTIFICATION.toLocaleString("en-GB")} characters`;
    count.classList.toggle("is-over", n > MAX_JUSTIFICATION);
  };
  updateCount();
  input.addEventListener("input", () => {
    updateCount();
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    onInput(input.value);
  });
  const box = h(
    "div",
    { class: "protected-box", id: "protected-box" },
    h(
      "h3",
      {},
      `⚠ Protected: ${n} ${n === 1 ? "site or movement" : "sites or movements"} in the way`,
    ),
    h(
      "p",
      {},
      "Sites and movements are protected: people are there. Declaring this operation alerts their owners and the coordinator at once, and needs a written justification. It is kept in the record and shown to the coordinator.",
    ),
    h(
      "ul",
      { class: "conflicts", id: "protected-list" },
      refs.map((ref, i) =>
        h(
          "li",
          { class: "conflict-item is-protected", dataset: { declId: ref.id } },
          h(
            "button",
            { type: "button", class: "link", onclick: () => onSelect(ref.id) },
            kindChip(ref.kind),
            " ",
            decls[i] ? declTitle(decls[i]) : ref.id,
          ),
          h(
            "div",
            { class: "muted" },
            `of ${partyName(ref.owner)}${decls[i] && decls[i].category ? ` · ${decls[i].category}` : ""}`,
          ),
        ),
      ),
    ),
    h(
      "div",
      { class: "field", dataset: { field: "justification" } },
      h("label", { for: "declare-justification" }, "Justification (required)"),
      h(
        "div",
        { class: "hint", id: "declare-justification-help" },
        "Why must this operation go ahead near them? Up to 2,000 characters.",
      ),
      input,
      count,
      error,
    ),
  );
  return {
    box,
    input,
    showError(message) {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    },
  };
}
