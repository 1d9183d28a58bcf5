// Live refresh without hammering the API: poll fast while something changes, back off while nothing
// does, stop while the tab is hidden, and stop for good when the page is left.

import { reportUnexpected } from "/console/api.js";

/**
 * Call `load()` repeatedly. It returns `{changed, active}`: `changed` brings the delay back to `fastMs`,
 * otherwise it grows by `factor` up to `slowMs`; `active` false (nothing open to watch) means `slowMs`.
 * Returns a function that stops polling.
 */
export function poll(load, { fastMs = 1000, slowMs = 30000, factor = 1.6, onSchedule } = {}) {
  let delay = fastMs;
  let timer = null;
  let stopped = false;

  const schedule = (ms) => {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(tick, ms);
    if (onSchedule) onSchedule(ms);
  };

  async function tick() {
    if (stopped) return;
    if (document.hidden) return; // resumed by the visibility listener
    let result = { changed: false, active: true };
    try {
      result = (await load()) || result;
    } catch (error) {
      reportUnexpected(error);
      result = { changed: false, active: true }; // a failed poll backs off like a quiet one
    }
    if (!result.active) delay = slowMs;
    else delay = result.changed ? fastMs : Math.min(slowMs, Math.round(delay * factor));
    schedule(delay);
  }

  const onVisibility = () => { if (!document.hidden && !stopped) schedule(0); };
  document.addEventListener("visibilitychange", onVisibility);
  schedule(delay);
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}
