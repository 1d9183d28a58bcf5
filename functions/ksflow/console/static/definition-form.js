// The form that creates a workflow definition or replaces one (PUT is a full replacement). Path parts are
// picked from the tenant's knowledge tree by their paths; the API's 422 details are shown at their fields.

import { ApiError, api, get } from "/console/api.js";
import { h, mount } from "/console/dom.js";
import { errorBox, heading, userText } from "/console/ui.js";

const CADENCES = ["DAILY", "WEEKLY", "MONTHLY"];
const TREE_PAGE = 100;
const TREE_MAX_PARTS = 2000; // a picker longer than this is no help; the rest is named in a notice

/**
 * Folders and documents the caller can see, with the root folder first, as `{id, path, type}`.
 * `truncated` says the tree held more than the picker lists.
 */
export async function loadPathParts() {
  const parts = [];
  let total = 0;
  for (let offset = 0; offset < TREE_MAX_PARTS; offset += TREE_PAGE) {
    const page = await get("/v1/path-parts", { max_depth: 50, limit: TREE_PAGE, offset });
    parts.push(...page.items);
    total = page.total;
    if (offset + TREE_PAGE >= page.total) break;
  }
  const picked = parts.filter((p) => p.part_type === "FOLDER" || p.part_type === "DOCUMENT")
    .map((p) => ({ id: p.path_part_id, path: p.materialized_path, type: p.part_type }));
  // The listing's parent is the tenant's root folder: the parent no listed part is.
  const ids = new Set(parts.map((p) => p.path_part_id));
  const root = parts.find((p) => p.parent_path_id && !ids.has(p.parent_path_id));
  if (root) picked.unshift({ id: root.parent_path_id, path: "/", type: "FOLDER" });
  picked.sort((a, b) => a.path.localeCompare(b.path));
  return { parts: picked, truncated: total > parts.length };
}

/** "DAILY" as "Daily". */
export function cadenceName(cadence) {
  return cadence.charAt(0) + cadence.slice(1).toLowerCase();
}

/** `schedule_start_at` (a UTC instant) as the `datetime-local` wall time in `zone`. */
function wallTime(iso, zone) {
  if (!iso) return "";
  try {
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
      timeZone: zone || "UTC", hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit",
    }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
  } catch {
    return String(iso).slice(0, 16);
  }
}

function timeZones() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return ["UTC", ...zones.filter((z) => z !== "UTC")];
}

/**
 * Draw the form into `container`. `definition` (a GET response) fills it for an edit; without it the
 * form creates. `onSaved(definition)` runs with the API's answer.
 */
export async function renderDefinitionForm(container, { definition = null, onSaved, cancelHref }) {
  const editing = Boolean(definition);
  // A USER granted only parts of the tree cannot list it from the root: the form still opens, and says so.
  const tree = await loadPathParts().catch((error) => ({ parts: [], truncated: false, error }));
  const fields = new Map(); // API field path ("runner_config.url") → {message element, control, label}
  let fieldCount = 0;

  /** A labelled control with a hint and a place for the API's complaint about it. */
  function field(key, label, control, hint) {
    const id = control.id || `def-field-${++fieldCount}`;
    control.id = id;
    const message = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    const hintNode = hint ? h("p", { class: "muted hint", id: `${id}-hint` }, hint) : null;
    control.setAttribute("aria-describedby", [hintNode && hintNode.id, message.id].filter(Boolean).join(" "));
    fields.set(key, { message, control, label });
    return h("div", { class: "field" }, h("label", { for: id }, label), control, hintNode, message);
  }

  /** A place for complaints about a whole group of fields (`runner_config`, `retry_policy`). */
  function groupMessage(key, label, control) {
    const message = h("p", { class: "field-error", id: `${key}-error`, hidden: true });
    fields.set(key, { message, control, label });
    return message;
  }

  /**
   * Checkboxes labelled by path. A saved reference the tree did not list stays checked under its id, so
   * saving an edit never drops it silently.
   */
  function picker(key, label, types, selected, hint) {
    const chosen = new Set((selected || []).map(String));
    const listed = tree.parts.filter((p) => types.includes(p.type));
    const unlisted = [...chosen].filter((id) => !listed.some((p) => p.id === id))
      .map((id) => ({ id, path: `Not listed here (${id})`, type: "" }));
    const choices = [...listed, ...unlisted];
    const message = h("p", { class: "field-error", id: `${key}-error`, hidden: true });
    const boxes = choices.map((part, index) => {
      const id = `${key}-${index}`;
      return h("div", { class: "pick" },
        h("input", { type: "checkbox", id, value: part.id, checked: chosen.has(part.id) }),
        h("label", { for: id }, userText(part.path),
          part.type === "DOCUMENT" ? h("span", { class: "muted" }, " (document)") : null));
    });
    const list = h("div", { class: "pick-list" },
      boxes.length ? boxes : h("p", { class: "muted" }, "Nothing to pick yet: add it on the Documents page first."));
    const group = h("fieldset", { class: "field picker", "aria-describedby": `${key}-hint ${message.id}` },
      h("legend", {}, label), h("p", { class: "muted hint", id: `${key}-hint` }, hint), list, message);
    fields.set(key, { message, control: group, label });
    const values = () => boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    return { group, values };
  }

  const value = (v) => (v === null || v === undefined ? "" : String(v));
  const d = definition || {};
  const name = h("input", { type: "text", maxlength: "255", required: true, value: value(d.name),
                            autocomplete: "off" });
  const description = h("textarea", { rows: "3", maxlength: "4096" }, value(d.description));
  const runnerUrl = h("input", { type: "url", maxlength: "2083", value: value(d.runner_config && d.runner_config.url),
                                 placeholder: "https://runner.example.com/hooks/ksflow", autocomplete: "off" });
  const secret = h("input", { type: "password", maxlength: "1024", autocomplete: "new-password", spellcheck: "false" });
  const sources = picker("source_path_part_ids", "Sources", ["FOLDER", "DOCUMENT"], d.source_path_part_ids,
    "Folders or documents the runner reads (1 to 20).");
  const instructions = picker("instruction_path_part_ids", "Instructions", ["DOCUMENT"], d.instruction_path_part_ids,
    "Documents that tell the runner what to do (1 to 20).");
  const outputs = picker("output_path_part_ids", "Outputs", ["FOLDER"], d.output_path_part_ids,
    "Folders the runner writes its results to (1 to 20).");
  const documents = tree.parts.filter((p) => p.type === "DOCUMENT");
  const templateUnlisted = d.template_path_part_id && !documents.some((p) => p.id === d.template_path_part_id);
  const template = h("select", {},
    h("option", { value: "" }, "No template"),
    documents.map((p) => h("option", { value: p.id, selected: p.id === d.template_path_part_id }, p.path)),
    templateUnlisted
      ? h("option", { value: d.template_path_part_id, selected: true }, `Not listed here (${d.template_path_part_id})`)
      : null);
  const number = (min, max, current, step = "1") => h("input", {
    type: "number", min, max, step, value: value(current) });
  const maxDuration = number("60", "86400", d.max_run_duration_seconds ?? 300);
  const heartbeat = number("10", "3600", d.heartbeat_timeout_seconds);
  const active = h("input", { type: "checkbox", id: "def-active", checked: editing ? d.is_active : true });
  const cadence = h("select", {}, h("option", { value: "" }, "Manual only"),
    CADENCES.map((c) => h("option", { value: c, selected: c === d.schedule_cadence }, cadenceName(c))));
  const zone = d.schedule_timezone || "UTC";
  const startAt = h("input", { type: "datetime-local", value: wallTime(d.schedule_start_at, zone) });
  const timezone = h("input", { type: "text", list: "def-zones", maxlength: "64", value: zone, autocomplete: "off" });
  const zones = h("datalist", { id: "def-zones" }, timeZones().map((z) => h("option", { value: z })));
  const overlap = h("select", {},
    h("option", { value: "SKIP", selected: d.schedule_overlap !== "ALLOW" }, "Skip if the last is open"),
    h("option", { value: "ALLOW", selected: d.schedule_overlap === "ALLOW" }, "Allow overlapping runs"));
  // The schedule's other fields mean nothing without a cadence.
  const syncSchedule = () => [startAt, timezone, overlap].forEach((control) => { control.disabled = !cadence.value; });
  cadence.addEventListener("change", syncSchedule);
  syncSchedule();
  const policy = d.retry_policy || {};
  const maxAttempts = number("1", "10", policy.max_attempts ?? 1);
  const backoff = number("1", "3600", policy.backoff_seconds ?? 30);
  const multiplier = number("1", "10", policy.backoff_multiplier ?? 2, "0.1");

  const summary = h("div", { class: "form-errors", role: "alert", tabindex: "-1" });
  const save = h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create definition");

  const numberOrNull = (input) => (input.value.trim() === "" ? null : Number(input.value));
  function body() {
    const url = runnerUrl.value.trim();
    const schedule = cadence.value
      ? { schedule_cadence: cadence.value, schedule_start_at: startAt.value || null,
          schedule_timezone: timezone.value.trim() || "UTC", schedule_overlap: overlap.value }
      : { schedule_cadence: null, schedule_start_at: null, schedule_timezone: null, schedule_overlap: overlap.value };
    const attempts = numberOrNull(maxAttempts);
    return {
      name: name.value.trim(),
      description: description.value.trim() || null,
      runner_type: "SELF_HOSTED",
      runner_config: url ? { url, webhook_secret: secret.value } : null,
      source_path_part_ids: sources.values(),
      instruction_path_part_ids: instructions.values(),
      output_path_part_ids: outputs.values(),
      template_path_part_id: template.value || null,
      max_run_duration_seconds: numberOrNull(maxDuration) ?? 300,
      is_active: active.checked,
      ...schedule,
      // One attempt is the API's default: no policy to send.
      retry_policy: attempts !== null && attempts !== 1
        ? { max_attempts: attempts, backoff_seconds: numberOrNull(backoff) ?? 30,
            backoff_multiplier: numberOrNull(multiplier) ?? 2 }
        : null,
      heartbeat_timeout_seconds: numberOrNull(heartbeat),
    };
  }

  function clearField({ message, control }) {
    message.hidden = true;
    mount(message);
    control.removeAttribute("aria-invalid");
  }

  function clearErrors() {
    mount(summary);
    fields.forEach(clearField);
  }

  /** Each `{loc, msg}` at the field its loc names (the longest known prefix), and all of them in a list on top. */
  function showErrors(problems) {
    const items = problems.map((problem) => {
      const path = (problem.loc || []).filter((p) => p !== "body").map(String);
      const key = path.map((_, i) => path.slice(0, path.length - i).join(".")).find((k) => fields.has(k));
      const target = key && fields.get(key);
      if (target) {
        target.message.hidden = false;
        target.message.appendChild(h("span", {}, problem.msg, " "));
        target.control.setAttribute("aria-invalid", "true");
      }
      return h("li", {}, h("strong", {}, target ? target.label : (path.join(".") || "Definition")), ": ", problem.msg);
    });
    mount(summary, h("div", { class: "error-box" }, h("p", {}, "The definition was not saved:"), h("ul", {}, items)));
    summary.focus();
  }

  const form = h("form", { class: "definition-form", novalidate: true, "aria-labelledby": "def-form-title" },
    summary,
    h("section", { class: "card form-section", "aria-labelledby": "def-about" },
      h("h2", { id: "def-about" }, "About"),
      field("name", "Name", name),
      field("description", "Description", description, "Optional. Search matches it as well as the name."),
      h("div", { class: "field check" }, active,
        h("label", { for: "def-active" }, "Active (can be invoked and scheduled)"))),
    h("section", { class: "card form-section", "aria-labelledby": "def-runner" },
      h("h2", { id: "def-runner" }, "Runner"),
      groupMessage("runner_config", "Runner", runnerUrl),
      field("runner_config.url", "Runner URL", runnerUrl,
        "Where runs are dispatched (https; a runner on this machine may use http://127.0.0.1). "
        + "Leave empty for no runner."),
      field("runner_config.webhook_secret", "Webhook secret", secret, editing
        ? "Required with a runner URL: enter it again. It is write-only, never shown, and saving replaces it."
        : "Required with a runner URL. It signs dispatches; it is never shown again."),
      h("div", { class: "form-row" },
        field("max_run_duration_seconds", "Max run duration (seconds)", maxDuration, "60 to 86400."),
        field("heartbeat_timeout_seconds", "Heartbeat timeout (seconds)", heartbeat,
          "Optional, 10 to 3600: a running attempt without a heartbeat for this long fails."))),
    h("section", { class: "card form-section", "aria-labelledby": "def-paths" },
      h("h2", { id: "def-paths" }, "Knowledge"),
      tree.truncated
        ? h("p", { class: "muted" }, `Only the first ${TREE_MAX_PARTS} entries of the knowledge tree are listed.`)
        : null,
      tree.error
        ? h("p", { class: "error-box" }, "The knowledge tree could not be listed: ", tree.error.message)
        : null,
      h("div", { class: "picker-grid" }, sources.group, instructions.group, outputs.group),
      field("template_path_part_id", "Template", template, "Optional document the runner fills in.")),
    h("section", { class: "card form-section", "aria-labelledby": "def-schedule" },
      h("h2", { id: "def-schedule" }, "Schedule"),
      h("div", { class: "form-row" },
        field("schedule_cadence", "Cadence", cadence),
        field("schedule_start_at", "First run at", startAt,
          "Wall time in the time zone; it sets the time, weekday and day of month."),
        field("schedule_timezone", "Time zone", timezone, "An IANA name such as Europe/Paris."),
        field("schedule_overlap", "Overlap", overlap)),
      zones),
    h("section", { class: "card form-section", "aria-labelledby": "def-retry" },
      h("h2", { id: "def-retry" }, "Retries"),
      groupMessage("retry_policy", "Retries", maxAttempts),
      h("div", { class: "form-row" },
        field("retry_policy.max_attempts", "Max attempts", maxAttempts, "1 to 10; 1 means no automatic retry."),
        field("retry_policy.backoff_seconds", "Backoff (seconds)", backoff, "Wait before the first retry, 1 to 3600."),
        field("retry_policy.backoff_multiplier", "Backoff multiplier", multiplier,
          "Each later wait grows by it, 1 to 10."))),
    h("div", { class: "form-actions" }, save, h("a", { href: cancelHref }, "Cancel")));

  // A field's complaint goes away once the user changes that field.
  const settle = (event) => fields.forEach((entry) => {
    if (entry.control === event.target || entry.control.contains(event.target)) clearField(entry);
  });
  form.addEventListener("input", settle);
  form.addEventListener("change", settle);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (save.disabled) return;
    clearErrors();
    const request = body();
    if (request.runner_config && !request.runner_config.webhook_secret) {
      showErrors([{ loc: ["body", "runner_config", "webhook_secret"],
                    msg: "Enter the webhook secret the runner verifies." }]);
      return;
    }
    save.disabled = true;
    try {
      const saved = editing
        ? await api("PUT", `/v1/workflow-definitions/${encodeURIComponent(definition.id)}`, { body: request })
        : await api("POST", "/v1/workflow-definitions", { body: request });
      secret.value = "";
      onSaved(saved);
    } catch (error) {
      if (error instanceof ApiError && Array.isArray(error.detail)) showErrors(error.detail);
      else mount(summary, errorBox(error));
    } finally {
      save.disabled = false;
    }
  });

  mount(container,
    heading(editing ? ["Edit ", userText(definition.name)] : "New definition"),
    form);
  container.querySelector("h1").id = "def-form-title";
}
