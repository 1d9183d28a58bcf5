// One workflow definition: its configuration (never the secret: the API does not return it), the paths it
// references, its schedule, its runs (live while one is open), and Invoke, Edit and Delete.
// `#/definitions/<id>?edit=1` shows the form that replaces it.

import { ApiError, api, get, post } from "/console/api.js";
import { cadenceName, renderDefinitionForm } from "/console/definition-form.js";
import { h, mount } from "/console/dom.js";
import { liveRunsTable, runColumns } from "/console/runs.js";
import { actionButton, confirmInPage, duration, errorBox, facts, heading, notify, time, userText } from "/console/ui.js";

const RUNS_PAGE = 10;

/** Each referenced path part as its path (in the order given); a part that is gone says so. */
async function resolvePaths(ids) {
  const unique = [...new Set(ids.filter(Boolean))];
  const found = await Promise.all(unique.map((id) => get(`/v1/path-parts/${encodeURIComponent(id)}`)
    .then((part) => [id, part.materialized_path], () => [id, null])));
  return new Map(found);
}

function pathList(ids, paths) {
  if (!ids || !ids.length) return h("span", { class: "muted" }, "None");
  return h("ul", { class: "path-list" }, ids.map((id) => {
    const path = paths.get(id);
    return h("li", {}, path ? h("span", { class: "mono", title: id }, path)
      : h("span", { class: "muted" }, `Missing or not readable (${id})`));
  }));
}

/** An instant as the wall time in the schedule's zone (the zone its recurrence follows): "… 2:30 AM Europe/Paris". */
function zonedTime(iso, zone) {
  try {
    const text = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: zone })
      .format(new Date(iso));
    const instant = new Date(iso).toISOString();
    return h("time", { datetime: instant, title: instant }, `${text} ${zone}`);
  } catch {
    return time(iso); // a zone this browser does not know
  }
}

function schedule(definition) {
  if (!definition.schedule_cadence) return [["Schedule", h("span", { class: "muted" }, "Manual only")]];
  const error = definition.last_schedule_error;
  return [
    ["Cadence", cadenceName(definition.schedule_cadence)],
    ["First occurrence", zonedTime(definition.schedule_start_at, definition.schedule_timezone)],
    ["Next run at", definition.next_run_at
      ? zonedTime(definition.next_run_at, definition.schedule_timezone)
      : h("span", { class: "muted" }, definition.is_active ? "None" : "None: the definition is inactive")],
    ["Overlap", definition.schedule_overlap === "ALLOW" ? "Allow overlapping runs"
      : "Skip while the previous scheduled run is open"],
    ["Last schedule error", error
      ? h("div", { class: "error-box" },
        "Occurrence ", time(error.occurrence), " at ", time(error.at), ": ", userText(error.error))
      : h("span", { class: "muted" }, "None")],
  ];
}

function retryPolicy(policy) {
  if (!policy || policy.max_attempts <= 1) return h("span", { class: "muted" }, "No automatic retries");
  return `Up to ${policy.max_attempts} attempts; wait ${duration(policy.backoff_seconds)} before the first retry, `
    + `× ${policy.backoff_multiplier} before each later one`;
}

/** Delete after an in-page confirmation (a 409 while a run is open is shown as the API says it). */
function deleteControl(definition) {
  const area = h("div", { class: "confirm-area" });
  const ask = h("button", { type: "button", class: "danger", "aria-expanded": "false" }, "Delete");
  ask.addEventListener("click", () => confirmInPage(area, {
    question: ["Delete ", h("strong", {}, userText(definition.name)), " and all of its runs?"],
    confirmLabel: "Delete definition",
    opener: ask,
    remove: async () => {
      await api("DELETE", `/v1/workflow-definitions/${encodeURIComponent(definition.id)}`);
      notify(["Deleted ", userText(definition.name)]);
      window.location.hash = "#/definitions";
    },
  }));
  return { button: ask, area };
}

/**
 * Invoke with an idempotency key made when the page is drawn: a double click or a retried request makes one
 * run. The key is renewed only once a run came back, so the next click is a new run.
 */
function invokeControl(definition, area) {
  let key = crypto.randomUUID();
  return actionButton("Invoke", async () => {
    try {
      const run = await post(`/v1/workflow-definitions/${encodeURIComponent(definition.id)}/invoke`,
        { idempotency_key: key });
      key = crypto.randomUUID();
      window.location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    } catch (error) {
      mount(area, errorBox(error));
    }
  }, { class: "primary" });
}

export async function render(container, context) {
  const id = context.params[0];
  let definition;
  try {
    definition = await get(`/v1/workflow-definitions/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
      mount(container, heading("Definition not found"),
        h("p", {}, "It does not exist, was deleted, or is not visible to you. ",
          h("a", { href: "#/definitions" }, "All definitions")));
      return;
    }
    throw error;
  }
  const href = `#/definitions/${encodeURIComponent(definition.id)}`;
  if (context.query.get("edit") === "1") {
    await renderDefinitionForm(container, {
      definition, cancelHref: href,
      onSaved: () => { notify("Definition saved"); window.location.hash = href; },
    });
    return;
  }

  const paths = await resolvePaths([...definition.source_path_part_ids, ...definition.instruction_path_part_ids,
    ...definition.output_path_part_ids, definition.template_path_part_id]);
  const messages = h("div", { class: "action-messages" });
  const remove = deleteControl(definition);
  const canInvoke = definition.is_active && definition.runner_config;
  const invokeNote = canInvoke ? null : h("span", { class: "muted" },
    definition.is_active ? "No runner configured: invoke is off" : "Inactive: invoke is off");
  const edit = h("button", { type: "button", onclick: () => { window.location.hash = `${href}?edit=1`; } }, "Edit");

  const runsArea = h("div", { class: "results" });
  const liveStatus = h("span", { class: "muted live-status" });
  mount(container,
    heading(definition.name, canInvoke ? invokeControl(definition, messages) : invokeNote, edit, remove.button),
    messages, remove.area,
    h("div", { class: "grid definition-cards" },
      h("section", { class: "card", "aria-labelledby": "def-config" },
        h("h2", { id: "def-config" }, "Configuration"),
        facts([
          ["Description", definition.description || h("span", { class: "muted" }, "None")],
          ["State", definition.is_active ? "Active" : "Inactive"],
          ["Runner URL", definition.runner_config
            ? h("span", { class: "mono wrap" }, definition.runner_config.url)
            : h("span", { class: "muted" }, "No runner")],
          ["Webhook secret", definition.runner_config ? "Set, never shown" : h("span", { class: "muted" }, "None")],
          ["Max run duration", duration(definition.max_run_duration_seconds)],
          ["Heartbeat timeout", definition.heartbeat_timeout_seconds
            ? duration(definition.heartbeat_timeout_seconds) : h("span", { class: "muted" }, "None")],
          ["Retries", retryPolicy(definition.retry_policy)],
          ["Created", time(definition.created_at)],
          ["Updated", time(definition.updated_at)],
          ["Id", h("span", { class: "mono wrap" }, definition.id)],
        ])),
      h("section", { class: "card", "aria-labelledby": "def-knowledge" },
        h("h2", { id: "def-knowledge" }, "Knowledge"),
        facts([
          ["Sources", pathList(definition.source_path_part_ids, paths)],
          ["Instructions", pathList(definition.instruction_path_part_ids, paths)],
          ["Outputs", pathList(definition.output_path_part_ids, paths)],
          ["Template", definition.template_path_part_id ? pathList([definition.template_path_part_id], paths)
            : h("span", { class: "muted" }, "None")],
        ])),
      h("section", { class: "card", "aria-labelledby": "def-schedule" },
        h("h2", { id: "def-schedule" }, "Schedule"),
        facts(schedule(definition)))),
    h("section", { "aria-labelledby": "def-runs" },
      h("div", { class: "section-head" }, h("h2", { id: "def-runs" }, "Runs"), liveStatus),
      runsArea));

  let offset = 0;
  const restart = liveRunsTable(runsArea, liveStatus, context, {
    fetchPage: () => get(`/v1/workflow-definitions/${encodeURIComponent(definition.id)}/runs`,
      { limit: RUNS_PAGE, offset }),
    caption: `Runs of ${definition.name}`, columns: runColumns(new Map(), { withDefinition: false }),
    empty: "No runs yet.", go: (next) => { offset = next; restart(); },
  });
  await restart();
}
