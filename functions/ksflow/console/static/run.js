// One run: its header, a progress bar fed by heartbeats, its attempts, the event timeline, the frozen
// snapshot as a path tree, and Stop/Retry for those who may use them. Live while the run is open.

import { ApiError, get, post } from "/console/api.js";
import { h, mount } from "/console/dom.js";
import { poll } from "/console/poll.js";
import { OPEN, runDuration } from "/console/runs.js";
import {
  actionButton, clipped, duration, errorBox, facts, heading, notify, secondsBetween, shortId, statusBadge, table, time,
  userText,
} from "/console/ui.js";

const EVENTS_PAGE = 100;
const FAILURE_REASONS = {
  callback: "the runner reported a failure",
  dispatch: "dispatch gave up",
  timeout: "time limit exceeded",
  expiry: "expired",
  stopped: "stopped",
  heartbeat_timeout: "no heartbeat in time",
  reconcile: "reconciled",
};

/** Who a user id is, as far as the console knows: the signed-in user by email, anyone else by id. */
function who(userId, me) {
  return userId === me.id ? `${me.email || me.id} (you)` : shortId(userId);
}

/** A moment as "4 s ago" / "3 min ago". */
function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return seconds < 60 ? `${Math.round(seconds)} s ago` : `${duration(seconds)} ago`;
}

/** An event's `type` and `detail` in words. */
function describeEvent(event, me) {
  const d = event.detail || {};
  switch (event.type) {
    case "created":
      return [`Created (${String(d.trigger || "MANUAL").toLowerCase()}) by `, who(d.invoked_by, me),
        d.idempotency_key ? [" with idempotency key “", userText(d.idempotency_key), "”"] : ""];
    case "dispatch_attempt": {
      const answer = d.status ? `HTTP ${d.status}` : "no answer";
      return [`Dispatch attempt → ${answer} in ${d.duration_ms} ms`, d.error ? [": ", userText(d.error)] : ""];
    }
    case "dispatched":
      return "Dispatched: the runner accepted the run";
    case "heartbeat":
      return [`Heartbeat: ${d.progress}%`, d.message ? [" — ", userText(d.message)] : ""];
    case "callback":
      return [`Callback: ${d.status} (${d.authenticated_by === "api_key" ? "API key" : "signature"})`,
        d.error ? [" — ", userText(d.error)] : ""];
    case "completed":
      return "Completed";
    case "failed":
      return [`Failed: ${FAILURE_REASONS[d.reason] || d.reason || "unknown reason"}`,
        d.error ? [" — ", userText(d.error)] : "", d.retrying ? " (a retry follows)" : ""];
    case "retry_scheduled":
      return [`Retry scheduled: attempt ${event.attempt} starts in ${duration(d.wait_seconds)}`,
        d.starts_at ? [" (", time(d.starts_at), ")"] : ""];
    case "retried":
      return ["Retried by ", who(d.by, me)];
    default:
      return String(event.type);
  }
}

/** The snapshot's references grouped by their paths into a tree of folders and documents. */
function snapshotTree(snapshot) {
  const root = { name: "/", children: new Map(), roles: [] };
  const add = (reference, role) => {
    let node = root;
    for (const part of reference.materialized_path.split("/").filter(Boolean)) {
      if (!node.children.has(part)) node.children.set(part, { name: part, children: new Map(), roles: [] });
      node = node.children.get(part);
    }
    node.partType = reference.part_type;
    node.roles.push(role);
  };
  snapshot.sources.forEach((r) => add(r, "source"));
  snapshot.instructions.forEach((r) => add(r, "instruction"));
  snapshot.outputs.forEach((r) => add(r, "output"));
  if (snapshot.template) add(snapshot.template, "template");

  const branch = (node) => {
    const kind = node.partType === "DOCUMENT" ? "document" : "folder";
    return h("li", { class: ["tree-node", `tree-${kind}`] },
      h("span", { class: "tree-name" }, userText(node.name)),
      h("span", { class: "visually-hidden" }, ` (${kind})`),
      node.roles.map((role) => h("span", { class: ["tree-role", `role-${role}`] }, role)),
      node.children.size ? h("ul", {}, [...node.children.values()].map(branch)) : null);
  };
  return h("ul", { class: "snapshot-tree", "aria-label": "Snapshot paths" }, branch(root));
}

function attemptRows(run) {
  return [...run.attempts, { attempt: run.attempt, status: run.status, error: run.error,
                             started_at: run.started_at, completed_at: run.completed_at }];
}

const ATTEMPT_COLUMNS = [
  { label: "Attempt", cell: (a) => String(a.attempt), class: "num" },
  { label: "Status", cell: (a) => statusBadge(a.status) },
  { label: "Started", cell: (a) => time(a.started_at) },
  { label: "Completed", cell: (a) => time(a.completed_at) },
  { label: "Duration", cell: (a) => duration(secondsBetween(a.started_at, a.completed_at)), class: "num" },
  { label: "Error", cell: (a) => clipped(a.error, 120) },
];

function notFound(container, error) {
  const gone = error instanceof ApiError && [404, 422].includes(error.status);
  mount(container,
    heading(gone ? "Run not found" : "Run"),
    gone ? h("p", { class: "error-box", role: "alert" },
      "Run not found: no run with this id exists in your tenant, or you are not allowed to see it.")
      : errorBox(error),
    h("p", {}, h("a", { href: "#/runs" }, "Back to all runs")));
}

export async function render(container, context) {
  const runId = context.params[0];
  const { me } = context;
  let run;
  try {
    run = await get(`/v1/workflow-runs/${encodeURIComponent(runId)}`);
  } catch (error) {
    notFound(container, error);
    return;
  }
  // A definition is visible to its creator and OWNER/ADMIN only; a USER who cannot see it still sees the run.
  const definition = await get(`/v1/workflow-definitions/${encodeURIComponent(run.workflow_definition_id)}`)
    .catch(() => null);
  const name = definition ? definition.name : run.run_snapshot.workflow_name;
  const maxAttempts = definition && definition.retry_policy ? definition.retry_policy.max_attempts : null;
  // Stop/retry belong to the invoker, the definition's creator and OWNER/ADMIN. A USER who can read the
  // definition is its creator (nobody else may read it).
  const isCreator = Boolean(definition) && (definition.created_by ? definition.created_by === me.id : true);
  const mayAct = (current) => context.isAdmin || current.invoked_by === me.id || isCreator;

  const badge = h("span", { class: "run-status" });
  const actions = h("div", { class: "run-actions" });
  const actionMessage = h("div", { class: "run-action-message", role: "alert" });
  const summary = h("div", { class: "run-summary" });
  const bar = h("progress", { class: "progress-large", id: "run-progress", max: "100",
                              "aria-labelledby": "run-progress-label" });
  const progressText = h("p", { class: "run-progress-text" });
  const heartbeat = h("p", { class: "muted run-heartbeat" });
  const attempts = h("div", {});
  const timeline = h("ol", { class: "timeline", "aria-label": "Events, oldest first" });
  const liveStatus = h("span", { class: "muted live-status" });

  mount(container,
    heading([userText(name), ` · run ${String(run.id).slice(0, 8)}`], badge, liveStatus),
    h("div", { class: "run-toolbar" }, actions, actionMessage),
    h("section", { class: "card", "aria-labelledby": "run-summary-title" },
      h("h2", { id: "run-summary-title", class: "visually-hidden" }, "Summary"), summary),
    h("section", { class: "card run-progress", "aria-labelledby": "run-progress-label" },
      h("h2", { id: "run-progress-label" }, "Progress"), bar, progressText, heartbeat),
    h("section", { "aria-labelledby": "run-attempts-title" },
      h("h2", { id: "run-attempts-title" }, "Attempts"), attempts),
    h("section", { "aria-labelledby": "run-events-title" },
      h("h2", { id: "run-events-title" }, "Timeline"), timeline),
    h("section", { class: "card", "aria-labelledby": "run-snapshot-title" },
      h("h2", { id: "run-snapshot-title" }, "Snapshot"),
      h("p", { class: "muted" }, "The paths this run was given, frozen when it was invoked."),
      snapshotTree(run.run_snapshot),
      facts([["Time limit", duration(run.run_snapshot.max_run_duration_seconds)]])));

  function showSummary() {
    mount(badge, statusBadge(run.status));
    const attempt = maxAttempts ? `${run.attempt} of ${maxAttempts}` : String(run.attempt);
    mount(summary,
      facts([
        ["Definition", h("a", { href: `#/definitions/${encodeURIComponent(run.workflow_definition_id)}` }, name)],
        ["Status", statusBadge(run.status)],
        ["Attempt", attempt],
        ["Trigger", run.trigger === "SCHEDULE" && run.scheduled_for
          ? ["Schedule, occurrence of ", time(run.scheduled_for)] : String(run.trigger).toLowerCase()],
        ["Invoked by", who(run.invoked_by, me)],
        ["Created", time(run.created_at)],
        ["Started", time(run.started_at)],
        ["Completed", time(run.completed_at)],
        ["Duration", runDuration(run)],
        ["Run id", h("span", { class: "mono run-id" }, run.id)],
      ]),
      run.error ? [h("h3", { class: "run-error-title" }, "Error"), h("p", { class: "run-error" }, run.error)] : null);
  }

  function showProgress() {
    const value = run.progress === null || run.progress === undefined ? null : run.progress;
    if (run.status === "RUNNING" && value === null) {
      bar.removeAttribute("value"); // indeterminate: working, amount unknown
    } else {
      bar.value = run.status === "COMPLETED" ? 100 : value || 0;
    }
    const said = run.progress_message ? [" · ", userText(run.progress_message)] : "";
    const text = {
      PENDING: "Waiting for the runner to accept the run",
      RUNNING: value === null ? "Running; no progress reported yet" : [`${value}%`, said],
      COMPLETED: "100% · completed",
      FAILED: value === null ? "Failed before any progress was reported" : [`Failed at ${value}%`, said],
    }[run.status];
    mount(progressText, text || `${value || 0}%`);
    showHeartbeat();
  }

  function showHeartbeat() {
    const last = run.last_heartbeat_at;
    if (!last) mount(heartbeat, "No heartbeat yet");
    else if (OPEN.has(run.status)) mount(heartbeat, "Last heartbeat ", ago(last), " (", time(last), ")");
    else mount(heartbeat, "Last heartbeat at ", time(last));
  }

  let confirming = false;
  let shownActions = null;
  function showActions() {
    if (!OPEN.has(run.status)) confirming = false; // the run ended while the question was asked
    const key = `${run.status}:${confirming}`;
    if (key === shownActions) return; // keep focus on a button that stays
    shownActions = key;
    if (!mayAct(run)) {
      mount(actions);
      return;
    }
    if (OPEN.has(run.status) && confirming) {
      const no = h("button", { type: "button", onclick: () => { confirming = false; showActions(); } }, "Keep running");
      mount(actions, h("span", { class: "run-confirm" }, "Stop this run? It fails as “Stopped by user”."),
        actionButton("Yes, stop", reporting(stopRun), { class: "danger" }), no);
      actions.querySelector("button").focus();
    } else if (OPEN.has(run.status)) {
      mount(actions, h("button", { type: "button", class: "danger",
                                   onclick: () => { confirming = true; showActions(); } }, "Stop"));
    } else if (run.status === "FAILED") {
      mount(actions, actionButton("Retry", reporting(retryRun), { class: "primary" }));
    } else {
      mount(actions);
    }
  }

  /** The clicked button is gone once its answer shows: keyboard users go on from the button that replaced it. */
  const keepFocus = () => (actions.querySelector("button") || container.querySelector("h1")).focus();

  /** An action whose refusal (409, 403…) shows the API's detail next to the buttons. */
  const reporting = (action) => async () => {
    try {
      await action();
    } catch (error) {
      mount(actionMessage, errorBox(error));
    }
  };

  let generation = 0; // bumped whenever a run is shown: a poll that started before is stale
  function show(next) {
    generation += 1;
    run = next;
    showSummary();
    showProgress();
    mount(attempts, table("Attempts", ATTEMPT_COLUMNS, attemptRows(run)));
    showActions();
    mount(liveStatus, OPEN.has(run.status) ? "Live" : "Finished");
  }

  async function stopRun() {
    const stopped = await post(`/v1/workflow-runs/${encodeURIComponent(run.id)}/stop`);
    confirming = false;
    mount(actionMessage);
    show(stopped);
    keepFocus();
    notify("Run stopped.");
    await loadEvents();
    follow();
  }

  async function retryRun() {
    const retried = await post(`/v1/workflow-runs/${encodeURIComponent(run.id)}/retry`);
    mount(actionMessage);
    show(retried);
    keepFocus();
    notify(`Retry started: attempt ${retried.attempt}.`);
    await loadEvents();
    follow();
  }

  // Events only ever grow: each load asks for those after the ones shown, one load at a time.
  const events = [];
  let eventsLoading = Promise.resolve();
  function loadEvents() {
    eventsLoading = eventsLoading.catch(() => {}).then(async () => {
      for (;;) {
        const page = await get(`/v1/workflow-runs/${encodeURIComponent(run.id)}/events`,
          { limit: EVENTS_PAGE, offset: events.length });
        if (!context.isCurrent()) return;
        events.push(...page.items);
        timeline.append(...page.items.map((event) => h("li", { class: ["event", `event-${event.type}`] },
          h("span", { class: "event-time" }, time(event.at)),
          h("span", { class: "event-attempt muted" }, `Attempt ${event.attempt}`),
          h("span", { class: "event-text" }, describeEvent(event, me)))));
        if (!page.items.length || events.length >= page.total) return;
      }
    });
    return eventsLoading;
  }

  async function refresh() {
    const started = generation;
    const before = events.length;
    const next = await get(`/v1/workflow-runs/${encodeURIComponent(run.id)}`);
    await loadEvents();
    if (!context.isCurrent() || started !== generation) return { changed: true, active: true };
    // A heartbeat that reports nothing new is shown but lets polling back off.
    const signature = (r) => JSON.stringify([r.status, r.attempt, r.progress, r.progress_message, r.updated_at]);
    const changed = signature(next) !== signature(run) || events.length !== before;
    // A new status is announced (the toast is a polite live region); progress ticks are not, to stay quiet.
    if (next.status !== run.status) notify(`The run is now ${next.status}.`);
    if (changed || next.last_heartbeat_at !== run.last_heartbeat_at) show(next);
    if (!OPEN.has(run.status)) stopFollowing();
    mount(liveStatus, OPEN.has(run.status) ? "Live" : "Finished", " · checked ", time(new Date().toISOString()));
    return { changed, active: OPEN.has(run.status) };
  }

  let stopPolling = null;
  let ticker = null;
  function stopFollowing() {
    if (stopPolling) stopPolling();
    clearInterval(ticker);
    stopPolling = null;
  }
  function follow() {
    stopFollowing();
    if (!OPEN.has(run.status) || !context.isCurrent()) return;
    stopPolling = poll(refresh, { fastMs: 1000, slowMs: 15000 });
    ticker = setInterval(() => { if (run.last_heartbeat_at) showHeartbeat(); }, 1000);
  }
  context.onLeave(stopFollowing);

  show(run);
  await loadEvents();
  follow();
}
