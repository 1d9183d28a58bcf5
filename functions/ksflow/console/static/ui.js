// Pieces every page uses: status badges, tables, pagers, times, errors and notices.

import { h, mount } from "/console/dom.js";

/** A status as text and colour: the word is always there, the colour only repeats it. */
export function statusBadge(status) {
  const value = String(status || "unknown");
  return h("span", { class: ["badge", `status-${value.toLowerCase().replace(/[^a-z_]/g, "")}`] }, value);
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** A time in the browser's zone, with the exact UTC instant as its tooltip. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return h("span", {}, String(iso));
  return h("time", { datetime: moment.toISOString(), title: moment.toISOString() }, dateTime.format(moment));
}

/** Seconds as "850 ms", "42 s", "3 min 5 s", "2 h 4 min". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Math.round(seconds * 10) / 10} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The seconds between two ISO times, or null. */
export function secondsBetween(startIso, endIso) {
  if (!startIso || !endIso) return null;
  return (new Date(endIso) - new Date(startIso)) / 1000;
}

/** The first characters of an id, with the whole id for assistive technology and as a tooltip. */
export function shortId(id) {
  const value = String(id);
  return h("span", { class: "mono", title: value, "aria-label": value }, value.slice(0, 8));
}

/**
 * Text from users and runners set in a sentence of the console's own words: `<bdi>` isolates its direction,
 * so a right-to-left name or a stray U+202E cannot reorder the words around it.
 */
export function userText(text, props = {}) {
  return h("bdi", { class: "user-text", ...props }, String(text));
}

/** `text` cut to `max` characters, ending in an ellipsis when cut. */
export function cut(text, max) {
  // Whole code points: a cut through an emoji's surrogate pair would leave half a character.
  const points = [...String(text)];
  return points.length > max ? `${points.slice(0, Math.max(1, max - 1)).join("")}…` : points.join("");
}

/** Text cut to `max` characters; the whole text stays available as the tooltip. */
export function clipped(text, max = 80) {
  if (text === null || text === undefined || text === "") return h("span", { class: "muted" }, "—");
  const value = String(text);
  return userText(cut(value, max), { title: value });
}

/**
 * A table from column specs `{label, cell(row) → node|text, class?}`. On a narrow screen each row
 * becomes a card of labelled lines (the stylesheet reads `data-label`).
 */
export function table(caption, columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class, "data-label": c.label },
        c.cell(row))))))));
}

/** Previous/next buttons over an `{items, total, limit, offset}` page; `go(offset)` loads another. */
export function pager(page, go, noun = "items") {
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;
  return h("div", { class: "pager" },
    h("span", { class: "muted" }, `${first}–${last} of ${page.total} ${noun}`),
    h("button", { type: "button", disabled: page.offset === 0,
                  onclick: () => go(Math.max(0, page.offset - page.limit)) }, "Previous"),
    h("button", { type: "button", disabled: last >= page.total, onclick: () => go(page.offset + page.limit) },
      "Next"));
}

/** An API error as a message a person can act on. */
export function errorText(error) {
  if (error && error.message) return error.message;
  return String(error);
}

/** A message box that assistive technology announces. */
export function errorBox(error) {
  return h("div", { class: "error-box", role: "alert" }, errorText(error));
}

/** A short notice at the bottom of the page, announced politely. */
export function notify(message) {
  const toast = document.getElementById("toast");
  mount(toast, message);
  toast.classList.add("visible");
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => toast.classList.remove("visible"), 5000);
}

/** A page heading with optional actions on the right. */
export function heading(text, ...actions) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, text), h("div", { class: "actions" }, actions));
}

/** A labelled key/value list. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label),
    h("dd", {}, value)]));
}

/**
 * Run `action` once per click: the button is disabled while it runs, so a double click sends one request.
 */
export function actionButton(label, action, props = {}) {
  const button = h("button", { type: "button", ...props }, label);
  button.addEventListener("click", async () => {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await action();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  });
  return button;
}

/** Change the hash's query without leaving the page (filters), so a reload or a shared link keeps them. */
export function replaceQuery(query) {
  const path = window.location.hash.replace(/^#/, "").split("?", 1)[0];
  const search = new URLSearchParams(query).toString();
  window.history.replaceState(null, "", `#${path}${search ? `?${search}` : ""}`);
}

let confirmations = 0;

/**
 * Ask in the page, not with `confirm()`: `question` in `area` with a danger button that runs `remove()` (the API's
 * refusal shows in the box) and "Keep it" (or Escape), which closes the box and gives the focus back to `opener`
 * (and tells its `aria-expanded`, where it has one).
 */
export function confirmInPage(area, { question, confirmLabel, remove, opener }) {
  const questionId = `confirm-question-${++confirmations}`;
  const problem = h("div", {});
  const close = () => {
    mount(area);
    if (opener && opener.hasAttribute("aria-expanded")) opener.setAttribute("aria-expanded", "false");
    if (opener && opener.isConnected) opener.focus();
  };
  const keep = h("button", { type: "button", onclick: close }, "Keep it");
  const box = h("div", { class: "confirm-box", role: "group", "aria-labelledby": questionId },
    h("p", { id: questionId }, question, " This cannot be undone."),
    h("div", { class: "confirm-actions" },
      actionButton(confirmLabel, async () => {
        mount(problem);
        try {
          await remove();
        } catch (error) {
          mount(problem, errorBox(error));
        }
      }, { class: "danger" }),
      keep),
    problem);
  box.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  mount(area, box);
  if (opener && opener.hasAttribute("aria-expanded")) opener.setAttribute("aria-expanded", "true");
  keep.focus();
}
