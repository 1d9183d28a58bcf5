// Workflow definitions: a searchable list with each definition's last run (refreshed while one is open),
// and at `#/definitions?new=1` the form that creates one.

import { get, reportUnexpected } from "/console/api.js";
import { cadenceName, renderDefinitionForm } from "/console/definition-form.js";
import { h, mount } from "/console/dom.js";
import { poll } from "/console/poll.js";
import { OPEN } from "/console/runs.js";
import { clipped, errorBox, heading, pager, replaceQuery, shortId, statusBadge, table, time } from "/console/ui.js";

const PAGE_SIZE = 20;
const SORTS = [["CREATED_AT", "Newest first"], ["UPDATED_AT", "Recently updated"], ["NAME", "Name (A to Z)"]];
const SEARCH_DELAY_MS = 300;

/** The host a runner URL points at, or a dash when the definition has no runner. */
function runnerHost(definition) {
  const url = definition.runner_config && definition.runner_config.url;
  if (!url) return h("span", { class: "muted" }, "No runner");
  try {
    return h("span", { class: "mono", title: url }, new URL(url).host);
  } catch {
    return clipped(url, 40);
  }
}

/** "Daily" and when it fires next, or "Manual". */
function scheduleSummary(definition) {
  if (!definition.schedule_cadence) return h("span", { class: "muted" }, "Manual");
  return h("span", {}, cadenceName(definition.schedule_cadence), " · next ",
    definition.next_run_at ? time(definition.next_run_at) : h("span", { class: "muted" }, "none (inactive)"));
}

function lastRunCell(run) {
  if (run === undefined) return h("span", { class: "muted" }, "Loading…");
  if (run === null) return h("span", { class: "muted" }, "Never run");
  if (run instanceof Error) return h("span", { class: "muted" }, "Unavailable");
  return h("span", { class: "last-run" }, statusBadge(run.status), " ",
    h("a", { href: `#/runs/${encodeURIComponent(run.id)}`, "aria-label": `Run ${run.id}, ${run.status}` },
      shortId(run.id)),
    " ", time(run.created_at));
}

const COLUMNS = (lastRuns) => [
  { label: "Name", cell: (d) => h("a", { href: `#/definitions/${encodeURIComponent(d.id)}` }, clipped(d.name, 60)) },
  { label: "Active", cell: (d) => (d.is_active ? "Active" : h("span", { class: "muted" }, "Inactive")) },
  { label: "Schedule", cell: scheduleSummary },
  { label: "Runner", cell: runnerHost },
  { label: "Updated", cell: (d) => time(d.updated_at) },
  { label: "Last run", cell: (d) => lastRunCell(lastRuns.get(d.id)) },
];

function readQuery(query) {
  const sort = query.get("sort");
  return {
    search: query.get("search") || "",
    sort: SORTS.some(([value]) => value === sort) ? sort : "CREATED_AT",
    offset: Math.max(0, Number.parseInt(query.get("offset") || "0", 10) || 0),
  };
}

export async function render(container, context) {
  if (context.query.get("new") === "1") {
    await renderDefinitionForm(container, {
      cancelHref: "#/definitions",
      onSaved: (saved) => { window.location.hash = `#/definitions/${encodeURIComponent(saved.id)}`; },
    });
    return;
  }

  const state = readQuery(context.query);
  const results = h("div", { class: "results" });
  const liveStatus = h("span", { class: "muted live-status" });
  const search = h("input", { type: "search", id: "definition-search", value: state.search, maxlength: "255",
                              autocomplete: "off", placeholder: "Name or description" });
  const sort = h("select", { id: "definition-sort" },
    SORTS.map(([value, label]) => h("option", { value, selected: value === state.sort }, label)));
  const newButton = h("button", { type: "button", class: "primary",
                                  onclick: () => { window.location.hash = "#/definitions?new=1"; } }, "New definition");

  mount(container,
    heading("Definitions", liveStatus, newButton),
    h("form", { class: "filters", role: "search", "aria-label": "Find definitions",
                onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field grow" }, h("label", { for: "definition-search" }, "Search"), search),
      h("div", { class: "field" }, h("label", { for: "definition-sort" }, "Sort by"), sort)),
    results);

  let loads = 0;
  let lastSignature = null;
  /** One page of definitions and each one's newest run, drawn when anything changed. */
  async function load() {
    const sequence = ++loads;
    let page;
    try {
      page = await get("/v1/workflow-definitions", {
        search: state.search || undefined, sort_by: state.sort, limit: PAGE_SIZE, offset: state.offset || undefined,
      });
    } catch (error) {
      if (sequence === loads) mount(results, errorBox(error));
      lastSignature = null;
      throw error;
    }
    const lastRuns = new Map(await Promise.all(page.items.map((d) =>
      get(`/v1/workflow-definitions/${encodeURIComponent(d.id)}/runs`, { limit: 1 })
        .then((runs) => [d.id, runs.items[0] || null], (error) => [d.id, error]))));
    // The search changed while this page was on its way: the newer request draws.
    if (sequence !== loads || !context.isCurrent()) return { changed: false, active: false };
    const signature = JSON.stringify([page.total, page.items.map((d) => [d.id, d.updated_at, d.next_run_at]),
      [...lastRuns.values()].map((r) => (r && !(r instanceof Error) ? [r.id, r.status] : String(r)))]);
    const changed = signature !== lastSignature;
    lastSignature = signature;
    const open = [...lastRuns.values()].some((r) => r && OPEN.has(r.status));
    if (changed) {
      const empty = state.search ? "No definitions match this search."
        : "No definitions yet: create one with New definition.";
      mount(results,
        table("Definitions", COLUMNS(lastRuns), page.items, empty),
        page.total ? pager(page, (offset) => { state.offset = offset; restart(); }, "definitions") : null);
    }
    mount(liveStatus, open ? "Live: runs are open" : "Up to date", " · ", time(new Date().toISOString()));
    return { changed, active: open };
  }

  let stop = null;
  async function restart() {
    replaceQuery(Object.fromEntries(Object.entries({
      search: state.search, sort: state.sort === "CREATED_AT" ? "" : state.sort,
      offset: state.offset ? String(state.offset) : "",
    }).filter(([, v]) => v)));
    if (stop) stop();
    lastSignature = null;
    await load().catch(reportUnexpected);
    if (context.isCurrent()) stop = poll(load, { fastMs: 2000, slowMs: 30000 });
  }
  context.onLeave(() => stop && stop());

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.search = search.value.trim(); state.offset = 0; restart(); }, SEARCH_DELAY_MS);
  });
  context.onLeave(() => clearTimeout(typing));
  sort.addEventListener("change", () => { state.sort = sort.value; state.offset = 0; restart(); });
  await restart();
}
