// The tenant's runs: status chips, definition, "only mine" and a creation date range (issue 11's
// filters, kept in the URL), refreshed live while runs are open.

import { get, reportUnexpected } from "/console/api.js";
import { h, mount } from "/console/dom.js";
import { poll } from "/console/poll.js";
import {
  clipped, duration, errorBox, heading, pager, replaceQuery, secondsBetween, shortId, statusBadge, table, time,
} from "/console/ui.js";

export const STATUSES = ["PENDING", "RUNNING", "COMPLETED", "FAILED"];
export const OPEN = new Set(["PENDING", "RUNNING"]);
const PAGE_SIZE = 20;

/** The filters in the URL's query, as the API's query parameters. */
function apiQuery(filters) {
  const startOfDay = (date) => (date ? new Date(`${date}T00:00:00`).toISOString() : undefined);
  const dayAfter = (date) => {
    if (!date) return undefined;
    const next = new Date(`${date}T00:00:00`);
    next.setDate(next.getDate() + 1);
    return next.toISOString();
  };
  return {
    status: filters.statuses, definition_id: filters.definition || undefined, mine: filters.mine ? "true" : undefined,
    created_after: startOfDay(filters.from), created_before: dayAfter(filters.to),
    limit: PAGE_SIZE, offset: filters.offset || undefined,
  };
}

function readFilters(query) {
  return {
    statuses: (query.get("status") || "").split(",").filter((s) => STATUSES.includes(s)),
    definition: query.get("definition") || "",
    mine: query.get("mine") === "1",
    from: query.get("from") || "",
    to: query.get("to") || "",
    offset: Math.max(0, Number.parseInt(query.get("offset") || "0", 10) || 0),
  };
}

function writeFilters(filters) {
  replaceQuery(Object.fromEntries(Object.entries({
    status: filters.statuses.join(","), definition: filters.definition, mine: filters.mine ? "1" : "",
    from: filters.from, to: filters.to, offset: filters.offset ? String(filters.offset) : "",
  }).filter(([, v]) => v)));
}

/** The run's duration so far (open) or in all (finished). */
export function runDuration(run) {
  const end = run.completed_at || (OPEN.has(run.status) ? new Date().toISOString() : null);
  return duration(secondsBetween(run.started_at, end));
}

/** Progress as a bar with its number, or a dash when the runner never reported any. */
export function progressCell(run) {
  if (run.progress === null || run.progress === undefined) return h("span", { class: "muted" }, "—");
  return h("span", { class: "progress-cell" },
    h("progress", { max: "100", value: String(run.progress), "aria-label": `Progress ${run.progress}%` }),
    ` ${run.progress}%`);
}

/** The columns of a runs table; `names` maps definition ids to names. */
export function runColumns(names, { withDefinition = true } = {}) {
  return [
    { label: "Run", cell: (r) => h("a", { href: `#/runs/${encodeURIComponent(r.id)}` }, shortId(r.id)) },
    withDefinition && {
      label: "Definition",
      cell: (r) => h("a", { href: `#/definitions/${encodeURIComponent(r.workflow_definition_id)}` },
        clipped(names.get(r.workflow_definition_id) || String(r.workflow_definition_id).slice(0, 8), 40)),
    },
    { label: "Status", cell: (r) => statusBadge(r.status) },
    { label: "Attempt", cell: (r) => String(r.attempt), class: "num" },
    { label: "Progress", cell: progressCell },
    { label: "Trigger", cell: (r) => (r.trigger === "SCHEDULE" ? "Schedule" : "Manual") },
    { label: "Created", cell: (r) => time(r.created_at) },
    { label: "Duration", cell: runDuration, class: "num" },
    { label: "Error", cell: (r) => clipped(r.error, 60) },
  ].filter(Boolean);
}

/**
 * A table of runs that refreshes itself (poll.js), fast while any run on it is open; `fetchPage()` gets
 * the current page, `go(offset)` moves to another. Returns `restart()`, for when the query changed.
 */
export function liveRunsTable(area, liveStatus, context, { fetchPage, caption, columns, empty, go }) {
  let lastSignature = null;
  let loads = 0;
  async function load() {
    const sequence = ++loads;
    let page;
    try {
      page = await fetchPage();
    } catch (error) {
      if (sequence === loads) mount(area, errorBox(error));
      lastSignature = null;
      throw error;
    }
    // The query changed while this page was on its way: the newer request draws.
    if (sequence !== loads || !context.isCurrent()) return { changed: false, active: false };
    const signature = JSON.stringify([page.total, page.items.map((r) => [r.id, r.status, r.attempt, r.progress,
                                                                        r.updated_at])]);
    const changed = signature !== lastSignature;
    lastSignature = signature;
    const open = page.items.some((r) => OPEN.has(r.status));
    if (changed) mount(area, table(caption, columns, page.items, empty), page.total ? pager(page, go, "runs") : null);
    mount(liveStatus, open ? "Live: runs are open" : "Up to date", " · ", time(new Date().toISOString()));
    return { changed, active: open };
  }

  let stop = null;
  context.onLeave(() => stop && stop());
  return async function restart() {
    if (stop) stop();
    lastSignature = null;
    await load().catch(reportUnexpected);
    if (context.isCurrent()) stop = poll(load, { fastMs: 2000, slowMs: 30000 });
  };
}

export async function render(container, context) {
  const filters = readFilters(context.query);
  const definitions = await get("/v1/workflow-definitions", { limit: 100 });
  const names = new Map(definitions.items.map((d) => [d.id, d.name]));

  const results = h("div", { class: "results", "aria-live": "off" });
  const liveStatus = h("span", { class: "muted live-status" });

  const reload = () => { writeFilters(filters); start(); };
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Status" },
    STATUSES.map((status) => {
      const chip = h("button", { type: "button", class: ["chip", `status-${status.toLowerCase()}`],
                                 "aria-pressed": String(filters.statuses.includes(status)) }, status);
      chip.addEventListener("click", () => {
        filters.statuses = filters.statuses.includes(status)
          ? filters.statuses.filter((s) => s !== status) : [...filters.statuses, status];
        chip.setAttribute("aria-pressed", String(filters.statuses.includes(status)));
        filters.offset = 0;
        reload();
      });
      return chip;
    }));
  const definitionSelect = h("select", { id: "filter-definition" },
    h("option", { value: "" }, "All definitions"),
    definitions.items.map((d) => h("option", { value: d.id, selected: d.id === filters.definition }, d.name)));
  definitionSelect.addEventListener("change", () => { filters.definition = definitionSelect.value; filters.offset = 0; reload(); });
  const mine = h("input", { type: "checkbox", id: "filter-mine", checked: filters.mine });
  mine.addEventListener("change", () => { filters.mine = mine.checked; filters.offset = 0; reload(); });
  const dateInput = (id, name) => {
    const input = h("input", { type: "date", id, value: filters[name] });
    input.addEventListener("change", () => { filters[name] = input.value; filters.offset = 0; reload(); });
    return input;
  };
  const clear = h("button", { type: "button", class: "link-button" }, "Clear filters");
  // Leaving the filtered URL re-renders the page with every control reset.
  clear.addEventListener("click", () => { window.location.hash = "#/runs"; });

  mount(container,
    heading("Runs", liveStatus),
    h("form", { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: (e) => e.preventDefault() },
      h("fieldset", { class: "field" }, h("legend", {}, "Status"), chips),
      h("div", { class: "field" }, h("label", { for: "filter-definition" }, "Definition"), definitionSelect),
      h("div", { class: "field check" }, mine, h("label", { for: "filter-mine" }, "Only runs I invoked")),
      h("div", { class: "field" }, h("label", { for: "filter-from" }, "Created from"), dateInput("filter-from", "from")),
      h("div", { class: "field" }, h("label", { for: "filter-to" }, "Created to"), dateInput("filter-to", "to")),
      h("div", { class: "field" }, clear)),
    results);

  const start = liveRunsTable(results, liveStatus, context, {
    fetchPage: () => get("/v1/workflow-runs", apiQuery(filters)), caption: "Runs", columns: runColumns(names),
    empty: "No runs match these filters.", go: (offset) => { filters.offset = offset; reload(); },
  });
  await start();
}
