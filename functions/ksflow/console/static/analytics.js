// Tenant-wide analytics for OWNER and ADMIN (issue 11's `/v1/admin/workflows/*`), drawn as charts: runs
// over time by status, runs by hour of day, the failure rate, p50/p95 durations, top definitions and
// invokers. The window and bucket live in the URL; times are in the browser's time zone.

import { ApiError, get } from "/console/api.js";
import { barChart, chartFigure, columnChart, gauge, legend } from "/console/charts.js";
import { h, mount } from "/console/dom.js";
import { actionButton, duration, errorBox, heading, replaceQuery } from "/console/ui.js";

const WINDOWS = [
  { value: "24h", label: "Last 24 hours", hours: 24, buckets: ["hour"] },
  { value: "7d", label: "Last 7 days", hours: 24 * 7, buckets: ["day", "hour"] },
  { value: "30d", label: "Last 30 days", hours: 24 * 30, buckets: ["day", "week"] },
  { value: "90d", label: "Last 90 days", hours: 24 * 90, buckets: ["week", "day", "month"] },
];
// Each window offers the buckets that give a readable number of columns; its first one is the default.
const BUCKET_LABELS = { hour: "Hour", day: "Day", week: "Week", month: "Month" };
const STACKED = ["COMPLETED", "FAILED", "RUNNING", "PENDING"]; // bottom to top
const LEADERS = 8;
const ADMIN_ONLY = "Analytics are only for owners and admins of this tenant. Ask one of them for access.";

const percent = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 1,
                                                   maximumFractionDigits: 1 });
const count = new Intl.NumberFormat();

function readSettings(query) {
  const span = WINDOWS.find((w) => w.value === query.get("window")) || WINDOWS[1];
  return { window: span, bucket: span.buckets.includes(query.get("bucket")) ? query.get("bucket") : span.buckets[0] };
}

function plural(n, noun) {
  return `${count.format(n)} ${noun}${n === 1 ? "" : "s"}`;
}

/** Axis and tooltip texts of a bucket start, in the browser's zone. */
function bucketNames(bucket, points) {
  const format = (options) => new Intl.DateTimeFormat(undefined, options);
  const full = {
    hour: format({ weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
    day: format({ weekday: "short", month: "short", day: "numeric", year: "numeric" }),
    week: format({ month: "short", day: "numeric", year: "numeric" }),
    month: format({ month: "long", year: "numeric" }),
  }[bucket];
  const tick = {
    // Over more than a day, an hour's tick names its day too.
    hour: points > 25 ? format({ weekday: "short", hour: "numeric" }) : format({ hour: "numeric" }),
    day: format({ month: "short", day: "numeric" }),
    week: format({ month: "short", day: "numeric" }),
    month: format({ month: "short", year: "numeric" }),
  }[bucket];
  return (iso) => {
    const moment = new Date(iso);
    return { label: bucket === "week" ? `Week of ${full.format(moment)}` : full.format(moment),
             tick: tick.format(moment) };
  };
}

function emptyNote(text = "No runs in this window.") {
  return h("p", { class: "empty" }, text);
}

function runsOverTime(data, width) {
  const { summary, series, settings } = data;
  const detail = `${plural(summary.total, "run")} created, by ${settings.bucket}, by current status`;
  if (!summary.total) return chartFigure("Runs over time", detail, emptyNote());
  const name = bucketNames(settings.bucket, series.points.length);
  const columns = series.points.map((point) => ({
    ...name(point.bucket_start),
    segments: STACKED.map((status) => ({ value: (point.counts_by_state || {})[status] || 0, name: status,
                                          className: `status-${status.toLowerCase()}` })),
  }));
  const busiest = series.points.reduce((best, point) => (point.count > best.count ? point : best));
  const summaryText = `Runs over time, by ${settings.bucket}: ${plural(summary.total, "run")}; `
    + `${STACKED.map((status) => `${count.format(summary.counts_by_state[status] || 0)} ${status}`).join(", ")}. `
    + `Most in ${name(busiest.bucket_start).label}: ${plural(busiest.count, "run")}.`;
  return chartFigure("Runs over time", detail,
    columnChart({ width, columns, summary: summaryText }),
    legend(STACKED.map((status) => ({ label: status, className: `status-${status.toLowerCase()}`,
                                      value: count.format(summary.counts_by_state[status] || 0) }))));
}

function runsByHour(data, width) {
  const hours = data.byHour.counts_by_hour;
  const detail = `Runs created in each hour of the day (${data.byHour.timezone})`;
  if (!hours.some((n) => n > 0)) return chartFigure("Runs by hour of day", detail, emptyNote());
  const hourName = (hour) => `${String(hour).padStart(2, "0")}:00`;
  const busiest = hours.indexOf(Math.max(...hours));
  const columns = hours.map((n, hour) => ({
    label: `${hourName(hour)}–${hourName((hour + 1) % 24)}`, tick: String(hour),
    segments: [{ value: n, name: n === 1 ? "run" : "runs", className: "series-runs" }],
  }));
  return chartFigure("Runs by hour of day", detail, columnChart({
    width, height: 200, columns,
    summary: `Runs by hour of day: busiest ${hourName(busiest)} to ${hourName((busiest + 1) % 24)} with `
      + `${plural(hours[busiest], "run")}; ${hours.filter((n) => n > 0).length} of 24 hours had runs.`,
  }));
}

function failureRate(data) {
  const { summary } = data;
  const failed = summary.counts_by_state.FAILED || 0;
  const finished = failed + (summary.counts_by_state.COMPLETED || 0);
  const detail = "Failed runs among finished ones (COMPLETED and FAILED)";
  if (summary.failure_rate === null || summary.failure_rate === undefined) {
    return chartFigure("Failure rate", detail,
      emptyNote(summary.total ? "No run in this window has finished yet." : undefined));
  }
  const rate = percent.format(summary.failure_rate);
  return chartFigure("Failure rate", detail,
    h("div", { class: "gauge-box" },
      gauge({ fraction: summary.failure_rate, centerText: rate, caption: "failed",
              summary: `Failure rate ${rate}: ${count.format(failed)} of ${plural(finished, "finished run")} failed.`,
              partClass: "status-failed", restClass: "status-completed",
              partTitle: `${count.format(failed)} FAILED`, restTitle: `${count.format(finished - failed)} COMPLETED` }),
      legend([{ label: "FAILED", className: "status-failed", value: count.format(failed) },
              { label: "COMPLETED", className: "status-completed", value: count.format(finished - failed) }])));
}

function durations(data, width) {
  const { summary } = data;
  const detail = "Run duration of finished runs, median (p50) and 95th percentile (p95)";
  if (summary.duration_p50_seconds === null || summary.duration_p50_seconds === undefined) {
    return chartFigure("Duration", detail,
      emptyNote(summary.total ? "No run in this window has finished yet." : undefined));
  }
  const rows = [["p50", "Median (p50)", summary.duration_p50_seconds], ["p95", "95th percentile (p95)",
    summary.duration_p95_seconds]].map(([key, label, seconds]) => ({
    label, value: seconds, valueText: duration(seconds), className: `series-${key}`,
  }));
  return chartFigure("Duration", detail, barChart({
    width, rows, axisFormat: duration,
    summary: `Duration: median ${rows[0].valueText}, 95th percentile ${rows[1].valueText}.`,
  }));
}

function leaderboard(title, detail, entries, unnamed, width) {
  if (!entries.length) return chartFigure(title, detail, emptyNote());
  const rows = entries.map((entry) => ({
    label: entry.name || `${unnamed} ${String(entry.id).slice(0, 8)}`, value: entry.count,
    valueText: plural(entry.count, "run"), className: "series-runs",
  }));
  return chartFigure(title, detail, barChart({
    width, rows, summary: `${title}: ${rows.map((row) => `${row.label}, ${row.valueText}`).join("; ")}.`,
  }));
}

/** Every chart, each drawn as wide as its slot of the grid is now. */
function drawCharts(board, data) {
  const leaders = data.leaderboard;
  const layout = [
    ["wide", (width) => runsOverTime(data, width)],
    ["", () => failureRate(data)],
    ["", (width) => durations(data, width)],
    ["wide", (width) => runsByHour(data, width)],
    ["", (width) => leaderboard("Top definitions", "Definitions with most runs created in the window",
      leaders.top_workflows || [], "Deleted definition", width)],
    ["", (width) => leaderboard("Top invokers", "Users who invoked most runs in the window",
      leaders.top_users || [], "Removed user", width)],
  ];
  const slots = layout.map(([size]) => h("div", { class: ["chart-slot", size] }));
  mount(board, slots);
  // A chart's width is its slot's less the figure's padding (2 × 1.25 rem).
  slots.forEach((slot, index) => mount(slot, layout[index][1](Math.max(240, slot.clientWidth - 40))));
}

export async function render(container, context) {
  if (!context.isAdmin) {
    mount(container, heading("Analytics"), h("p", { class: "error-box", role: "alert" }, ADMIN_ONLY));
    return;
  }
  const settings = readSettings(context.query);
  const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const board = h("div", { class: "charts", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading analytics…"));
  let data = null;
  let loads = 0;

  async function load() {
    const sequence = ++loads;
    board.setAttribute("aria-busy", "true");
    const since = new Date(Date.now() - settings.window.hours * 3600 * 1000).toISOString();
    let answers;
    try {
      answers = await Promise.all([
        get("/v1/admin/workflows/summary", { since }),
        get("/v1/admin/workflows/timeseries", { since, bucket: settings.bucket, timezone }),
        get("/v1/admin/workflows/by-hour", { since, timezone }),
        get("/v1/admin/workflows/leaderboard", { since, limit: LEADERS }),
      ]);
    } catch (error) {
      if (sequence !== loads || !context.isCurrent()) return;
      board.removeAttribute("aria-busy");
      mount(board, error instanceof ApiError && error.status === 403
        ? h("p", { class: "error-box", role: "alert" }, ADMIN_ONLY) : errorBox(error));
      return;
    }
    // Settings changed while these were on their way: the newer load draws.
    if (sequence !== loads || !context.isCurrent()) return;
    const [summary, series, byHour, leaders] = answers;
    data = { summary, series, byHour, leaderboard: leaders, settings: { ...settings } };
    board.removeAttribute("aria-busy");
    drawCharts(board, data);
  }

  const bucketSelect = h("select", { id: "analytics-bucket" });
  const fillBuckets = () => mount(bucketSelect, settings.window.buckets.map((bucket) => h("option",
    { value: bucket, selected: bucket === settings.bucket }, BUCKET_LABELS[bucket])));
  fillBuckets();
  const windowSelect = h("select", { id: "analytics-window" },
    WINDOWS.map((w) => h("option", { value: w.value, selected: w === settings.window }, w.label)));
  const apply = () => {
    replaceQuery({ window: settings.window.value, bucket: settings.bucket });
    load();
  };
  windowSelect.addEventListener("change", () => {
    settings.window = WINDOWS.find((w) => w.value === windowSelect.value);
    settings.bucket = settings.window.buckets[0];
    fillBuckets();
    apply();
  });
  bucketSelect.addEventListener("change", () => { settings.bucket = bucketSelect.value; apply(); });

  // Charts are drawn to their width in pixels: redraw (without asking the API again) when it changes.
  let lastWidth = board.clientWidth;
  let frame = null;
  const onResize = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (data && board.clientWidth !== lastWidth) drawCharts(board, data);
      lastWidth = board.clientWidth;
    });
  };
  window.addEventListener("resize", onResize);
  context.onLeave(() => { window.removeEventListener("resize", onResize); cancelAnimationFrame(frame); });

  mount(container,
    heading("Analytics", actionButton("Refresh", load)),
    h("form", { class: "filters", "aria-label": "Chart settings", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field" }, h("label", { for: "analytics-window" }, "Window"), windowSelect),
      h("div", { class: "field" }, h("label", { for: "analytics-bucket" }, "Runs over time by"), bucketSelect),
      h("p", { class: "muted analytics-zone" }, `Times in ${timezone}`)),
    board);
  lastWidth = board.clientWidth;
  await load();
}
