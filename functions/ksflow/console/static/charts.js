// Small SVG charts built with `s()`: column charts (stacked or not), horizontal bars and a gauge.
//
// Hand-written rather than a vendored library: the CSP forbids inline styles, which chart libraries set
// on every element, and a canvas would be opaque to screen readers. Here each chart is an
// `<svg role="img">` whose label says in words what it shows, every bar carries its exact value as a
// `<title>` (a tooltip), colours come from the stylesheet through classes, and all text is text nodes.
//
// Builders take `width`, the pixels the chart gets: its viewBox is that wide, so at any screen width one
// unit is about one pixel, text keeps its size and tick labels thin out to fit instead of shrinking.

import { h, s } from "/console/dom.js";
import { cut } from "/console/ui.js";

const FONT_PX = 12;
const CHAR_PX = 7; // a generous average width of a 12 px character, to space labels so they never overlap
const count = new Intl.NumberFormat();
let clipPaths = 0; // ids of the clip paths that keep bar labels inside their chart

/** About how many pixels a label takes. */
function textWidth(text) {
  return String(text).length * CHAR_PX;
}

/**
 * Round axis ticks from 0 to at least `max`: steps of 1, 2, 2.5 or 5 times a power of ten (whole numbers
 * when `integer`), about `target` of them.
 */
export function niceTicks(max, { target = 4, integer = false } = {}) {
  const top = max > 0 ? max : 1;
  const rough = top / target;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power)
    .find((candidate) => candidate >= rough && (!integer || Number.isInteger(candidate))) || Math.ceil(rough);
  const last = Math.ceil(top / step - 1e-9);
  return Array.from({ length: last + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/** A figure: a caption (a heading and a line of detail) over the chart, a legend or an empty-state note. */
export function chartFigure(title, detail, ...body) {
  return h("figure", { class: "chart card" },
    h("figcaption", {}, h("h2", {}, title), detail ? h("p", { class: "muted" }, detail) : null),
    body);
}

/** A legend that names each series in text, next to its colour. */
export function legend(items) {
  return h("ul", { class: "chart-legend" }, items.map((item) => h("li", {},
    h("span", { class: ["swatch", item.className], "aria-hidden": "true" }),
    item.value === undefined ? item.label : `${item.label}: ${item.value}`)));
}

function chartSvg(width, height, summary, ...children) {
  return s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary,
                    preserveAspectRatio: "xMinYMin meet" }, children);
}

/**
 * Columns along a time or hour axis, each a stack of segments.
 * `columns`: [{label (for tooltips), tick (axis text), segments: [{value, name, className}]}]; `units` names a
 * column's total (one, many).
 */
export function columnChart({ width, height = 240, columns, summary, units = ["run", "runs"] }) {
  const totals = columns.map((c) => c.segments.reduce((sum, segment) => sum + segment.value, 0));
  const ticks = niceTicks(Math.max(0, ...totals), { integer: true });
  const top = ticks[ticks.length - 1];
  const left = Math.max(...ticks.map((t) => textWidth(count.format(t)))) + 10;
  const plot = { x: left, y: 8, width: Math.max(40, width - left - 6), height: height - 8 - 26 };
  const band = plot.width / Math.max(1, columns.length);
  const barWidth = Math.max(1, band * 0.72);
  const widestTick = Math.max(1, ...columns.map((c) => textWidth(c.tick)));
  const tickEvery = Math.max(1, Math.ceil((widestTick + 10) / band));
  const yOf = (value) => plot.y + plot.height - (value / top) * plot.height;

  const grid = ticks.map((t) => s("g", { class: "tick" },
    s("line", { class: "grid-line", x1: plot.x, x2: plot.x + plot.width, y1: yOf(t), y2: yOf(t) }),
    s("text", { x: plot.x - 6, y: yOf(t) + FONT_PX / 3, "text-anchor": "end" }, count.format(t))));
  const bars = columns.map((column, index) => {
    const x = plot.x + index * band + (band - barWidth) / 2;
    let base = 0;
    const segments = column.segments.filter((segment) => segment.value > 0).map((segment) => {
      const y = yOf(base + segment.value);
      const rect = s("rect", { class: ["bar", segment.className], x, y, width: barWidth, height: yOf(base) - y },
        s("title", {}, `${column.label}: ${count.format(segment.value)} ${segment.name}`));
      base += segment.value;
      return rect;
    });
    const middle = x + barWidth / 2;
    // A tick label sits under its column unless it would run off the chart's edges.
    const labelled = index % tickEvery === 0 && column.tick && middle - textWidth(column.tick) / 2 >= 0
      && middle + textWidth(column.tick) / 2 <= width;
    return s("g", { class: "column" },
      // The whole column's height answers a pointer, so an empty hour still tells its "0 runs".
      s("rect", { class: "hit", x: plot.x + index * band, y: plot.y, width: band, height: plot.height },
        s("title", {}, `${column.label}: ${count.format(totals[index])} ${units[totals[index] === 1 ? 0 : 1]}`)),
      segments,
      labelled
        ? s("text", { class: "axis-label", x: middle, y: plot.y + plot.height + 17, "text-anchor": "middle" }, column.tick)
        : null);
  });
  return chartSvg(width, height, summary, grid, bars,
    s("line", { class: "axis-line", x1: plot.x, x2: plot.x + plot.width, y1: yOf(0), y2: yOf(0) }));
}

/**
 * Horizontal bars on one scale, each with its name above it and its value as text after it.
 * `rows`: [{label, value, valueText, className}]; `axisFormat` draws a value axis (ticks) under the bars.
 */
export function barChart({ width, rows, summary, axisFormat = null }) {
  const rowHeight = 44;
  const barHeight = 16;
  const valueRoom = Math.max(...rows.map((row) => textWidth(row.valueText))) + 10;
  const scaleWidth = Math.max(40, width - valueRoom - 2);
  const largest = Math.max(0, ...rows.map((row) => row.value));
  const ticks = axisFormat ? niceTicks(largest) : [];
  // With an axis the scale ends on a round tick; without one the largest bar takes the whole width.
  const top = axisFormat ? ticks[ticks.length - 1] : largest || 1;
  const xOf = (value) => 1 + (value / top) * scaleWidth;
  const axisHeight = axisFormat ? 24 : 0;
  const height = rows.length * rowHeight + axisHeight;
  const maxLabel = Math.floor(width / CHAR_PX);
  // Wide characters (W, 𝔘, emoji) outgrow the average `cut` counts on: the chart's edge cuts them off.
  const clipId = `bar-labels-${++clipPaths}`;

  const axis = ticks.map((t) => s("g", { class: "tick" },
    s("line", { class: "grid-line", x1: xOf(t), x2: xOf(t), y1: 0, y2: height - axisHeight }),
    s("text", { x: xOf(t), y: height - 6, "text-anchor": t === 0 ? "start" : "middle" }, axisFormat(t))));
  const bars = rows.map((row, index) => {
    const y = index * rowHeight;
    const end = xOf(row.value);
    return s("g", { class: "bar-row" },
      // A tooltip is plain text: Unicode's isolate marks keep a right-to-left name from reordering the value.
      s("title", {}, `\u2068${row.label}\u2069: ${row.valueText}`),
      s("text", { class: "bar-label", x: 1, y: y + 14, "clip-path": `url(#${clipId})` }, cut(row.label, maxLabel)),
      s("rect", { class: ["bar", row.className], x: 1, y: y + 20, width: Math.max(2, end - 1), height: barHeight }),
      s("text", { class: "bar-value", x: Math.max(2, end) + 6, y: y + 20 + barHeight - 4 }, row.valueText));
  });
  return chartSvg(width, height, summary, s("clipPath", { id: clipId }, s("rect", { x: 0, y: 0, width, height })),
    axis, bars);
}

/** A ring gauge of a share (0 to 1): the share's arc, the rest's arc, and its text in the middle. */
export function gauge({ fraction, centerText, caption, summary, partClass, restClass, partTitle, restTitle }) {
  const size = 180;
  const middle = size / 2;
  const percent = Math.min(100, Math.max(0, fraction * 100));
  const ring = (className, dash, title) => s("circle", {
    class: ["gauge-arc", className], cx: middle, cy: middle, r: 66, pathLength: 100, "stroke-dasharray": dash,
    // Start at twelve o'clock and go clockwise.
    transform: `rotate(-90 ${middle} ${middle})` }, s("title", {}, title));
  return s("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": summary, class: "gauge" },
    ring(restClass, "100 0", restTitle),
    percent > 0 ? ring(partClass, `${percent} ${100 - percent}`, partTitle) : null,
    s("text", { class: "gauge-value", x: middle, y: middle + 6, "text-anchor": "middle" }, centerText),
    s("text", { class: "gauge-caption", x: middle, y: middle + 28, "text-anchor": "middle" }, caption));
}
