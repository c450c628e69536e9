// Answering a notification: the response (acknowledged, assured, cannot assure, denied) with
// a comment, chosen when acknowledging (API.md v1.1 "Responses"), and how an answer is shown.

import { post } from "./api.js";
import { fmtTime, h, replace } from "./dom.js";
import { emit, state } from "./state.js";

/** The responses, in the words a recipient chooses them by. */
export const RESPONSES = [
  { value: "acknowledged", label: "Acknowledged", hint: "received and understood" },
  { value: "assured", label: "Assured", hint: "we will keep clear" },
  { value: "cannot_assure", label: "Cannot assure", hint: "we cannot promise to keep clear" },
  { value: "denied", label: "Denied", hint: "we refuse this" },
];

const ICON = { acknowledged: "✓", assured: "✓", cannot_assure: "⚠", denied: "✗" };

export function responseLabel(value) {
  const found = RESPONSES.find((r) => r.value === value);
  return found ? found.label : String(value);
}

/** Whether an answer means the party will not (or may not) keep clear: shown apart. */
export function isWarningResponse(value) {
  return value === "cannot_assure" || value === "denied";
}

/** A response as a badge: an icon and words, never a colour alone. */
export function responseBadge(value) {
  if (!value) return null;
  return h(
    "span",
    {
      class: `resp resp-${value}${isWarningResponse(value) ? " resp-warning" : ""}`,
      dataset: { response: value },
    },
    `${ICON[value] || ""} ${responseLabel(value)}`.trim(),
  );
}

/** How many answer forms were drawn: a suffix that keeps their ids unique. */
let drawn = 0;

/** The answer area of a notification: the form while unacknowledged, the answer after. */
export function drawAnswer(n, area, { changing = false } = {}) {
  if (n.acknowledged_at && !changing) {
    replace(
      area,
      h(
        "div",
        { class: "answer-given" },
        h("span", { class: "ack-yes" }, `✓ Acknowledged ${fmtTime(n.acknowledged_at)}`),
        n.response && n.response !== "acknowledged" ? [" · ", responseBadge(n.response)] : null,
      ),
      n.comment ? h("div", { class: "answer-comment" }, `Comment: ${n.comment}`) : null,
      // A later answer is recorded as a new one and becomes the current one (API.md v1.1).
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small answer-change",
          onclick: () => drawAnswer(n, area, { changing: true }),
        },
        "Change answer",
      ),
    );
    return;
  }
  const current = n.response || "acknowledged";
  // The same notification's form can be on the page twice (the inbox and the alerts): each
  // drawing gets its own ids and radio group, so a label or a choice never reaches the other.
  drawn += 1;
  const group = `answer-${n.id}-${drawn}`;
  const comment = h("textarea", {
    class: "input answer-text",
    id: `${group}-comment`,
    rows: "2",
    maxlength: "10000",
    placeholder: "For example: which hours you will keep clear, or why you cannot",
  });
  if (changing && n.comment) comment.value = n.comment;
  const choices = RESPONSES.map((r, i) =>
    h(
      "label",
      { class: "check answer-choice" },
      h("input", {
        type: "radio",
        name: group,
        value: r.value,
        checked: changing ? r.value === current : i === 0,
      }),
      h("span", {}, h("strong", {}, r.label), ` — ${r.hint}`),
    ),
  );
  const send = h("button", { type: "submit", class: "btn btn-primary btn-small ack" }, "Send answer");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "answer-form", novalidate: true },
    h(
      "fieldset",
      { class: "answer-fieldset" },
      h("legend", {}, "Your answer"),
      choices,
    ),
    h("label", { for: `${group}-comment`, class: "answer-label" }, "Comment (optional)"),
    comment,
    error,
    h(
      "div",
      { class: "btn-row" },
      send,
      changing
        ? h(
            "button",
            { type: "button", class: "btn btn-small", onclick: () => drawAnswer(n, area) },
            "Cancel",
          )
        : null,
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = form.querySelector(`input[name='${group}']:checked`);
    send.disabled = true;
    send.textContent = "Sending…";
    error.hidden = true;
    try {
      const data = await post(`/v1/notifications/${encodeURIComponent(n.id)}/ack`, {
        response: chosen ? chosen.value : "acknowledged",
        comment: comment.value,
      });
      const updated = { ...n, ...(data.notification || {}) };
      if (!updated.acknowledged_at) updated.acknowledged_at = new Date().toISOString();
      state.notifications.set(n.id, updated);
      emit("receipt", { what: "answered a notification", receipt: data.receipt });
      emit("inbox", { fresh: 0 });
    } catch (err) {
      send.disabled = false;
      send.textContent = "Send answer";
      const p = err.problem || {};
      const named = (p.errors || []).map((x) => `${x.field}: ${x.message}`);
      error.textContent = named.length ? named.join("; ") : err.message;
      error.hidden = false;
    }
  });
  replace(area, form);
}
