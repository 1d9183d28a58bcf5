// The console's shell: sign-in, navigation and the hash router. Each page is a module whose
// `render(container, context)` draws it; pages load on first visit.

import { ApiError, get, session } from "/console/api.js";
import { h, mount } from "/console/dom.js";
import { errorBox, heading } from "/console/ui.js";

const ROUTES = [
  { pattern: /^\/runs$/, section: "runs", load: () => import("/console/runs.js") },
  { pattern: /^\/runs\/([^/]+)$/, section: "runs", load: () => import("/console/run.js") },
  { pattern: /^\/definitions$/, section: "definitions", load: () => import("/console/definitions.js") },
  { pattern: /^\/definitions\/([^/]+)$/, section: "definitions", load: () => import("/console/definition.js") },
  { pattern: /^\/analytics$/, section: "analytics", load: () => import("/console/analytics.js") },
  { pattern: /^\/documents(?:\/([^/]+))?$/, section: "documents", load: () => import("/console/documents.js") },
];
const HOME = "#/runs";
const ADMIN_ROLES = new Set(["OWNER", "ADMIN"]);

const main = document.getElementById("main");
let me = null; // the signed-in user (GET /v1/users/me)
let leaveHandlers = [];
let renderCount = 0;

/** The route in the hash: `#/runs?status=FAILED` is path `/runs` and its query. */
function currentLocation() {
  const raw = window.location.hash.replace(/^#/, "") || HOME.slice(1);
  const [path, search] = raw.split("?", 2);
  return { path, query: new URLSearchParams(search || "") };
}

/** A route's id as typed: a broken escape (`%E0%A4%A`) stays as it is, and the API says no such thing. */
function decodedParam(raw) {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** A heading as the tab's title: user text in it (`<bdi>`) keeps its isolation as Unicode's isolate marks. */
function plainTitle(heading) {
  const copy = heading.cloneNode(true);
  copy.querySelectorAll("bdi").forEach((bdi) => { bdi.textContent = `\u2068${bdi.textContent}\u2069`; });
  return copy.textContent;
}

function leave() {
  leaveHandlers.forEach((handler) => { try { handler(); } catch { /* a page's cleanup must not block */ } });
  leaveHandlers = [];
}

function showChrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("nav-analytics").hidden = !(signedIn && me && ADMIN_ROLES.has(me.current_tenant_role));
  mount(document.getElementById("who-name"), signedIn && me ? `${me.email || me.id} · ${me.current_tenant_role}` : "");
}

function markSection(section) {
  document.querySelectorAll("#nav a").forEach((link) => {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
}

function signOut(message) {
  session.clear();
  me = null;
  leave();
  renderSignIn(message);
}

function renderSignIn(message) {
  showChrome(false);
  document.title = "Sign in · ksflow console";
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off",
                             spellcheck: "false", required: true, placeholder: "sk-…",
                             "aria-describedby": "api-key-help" });
  const status = h("div", { id: "sign-in-status", role: "alert" }, message ? h("p", { class: "error-box" }, message) : null);
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "sign-in card", novalidate: true },
    h("h1", {}, "Sign in to ksflow"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { id: "api-key-help", class: "muted" },
      "Paste an API key of your tenant (it starts with sk-). It is kept in this tab only and forgotten when "
      + "the tab closes."),
    button,
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      mount(status, h("p", { class: "error-box" }, "Enter an API key."));
      input.focus();
      return;
    }
    button.disabled = true;
    mount(status, h("p", { class: "muted" }, "Checking the key…"));
    try {
      me = await get("/v1/users/me", undefined, key);
      session.key = key;
      input.value = "";
      route();
    } catch (error) {
      const text = error instanceof ApiError && error.status === 401
        ? "This API key was not accepted: it may be mistyped, revoked, or its user removed."
        : error.message;
      mount(status, h("p", { class: "error-box" }, text));
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  mount(main, form);
  input.focus();
}

async function route() {
  leave();
  const token = ++renderCount;
  if (!session.key) {
    renderSignIn();
    return;
  }
  if (!me) {
    try {
      me = await get("/v1/users/me");
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return; // the signed-out listener took over
      mount(main, errorBox(error));
      return;
    }
  }
  showChrome(true);
  const { path, query } = currentLocation();
  const found = ROUTES.map((r) => ({ route: r, match: r.pattern.exec(path) })).find((r) => r.match);
  if (!found && (path === "" || path === "/")) {
    window.location.replace(HOME);
    return;
  }
  if (!found) {
    markSection(null);
    mount(main, h("div", { class: "page" }, heading("Page not found"),
      h("p", {}, "The console has no page at this address. ", h("a", { href: HOME }, "Go to the runs"))));
    document.title = "Page not found · ksflow console";
    main.querySelector("h1").focus({ preventScroll: true });
    return;
  }
  markSection(found.route.section);
  const container = h("div", { class: "page" });
  mount(main, container);
  try {
    const page = await found.route.load();
    if (token !== renderCount) return; // left before the page loaded
    await page.render(container, {
      params: found.match.slice(1).map((p) => (p === undefined ? undefined : decodedParam(p))),
      query,
      me,
      isAdmin: ADMIN_ROLES.has(me.current_tenant_role),
      onLeave: (handler) => leaveHandlers.push(handler),
      isCurrent: () => token === renderCount,
    });
    const title = container.querySelector("h1");
    if (title) {
      document.title = `${plainTitle(title)} · ksflow console`;
      if (token === renderCount) title.focus({ preventScroll: true });
    }
  } catch (error) {
    if (token === renderCount) mount(container, errorBox(error));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("ksflow:signed-out", () => signOut("Your API key stopped working (revoked or expired). Sign in again."));
document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  window.location.hash = HOME;
});
route();
