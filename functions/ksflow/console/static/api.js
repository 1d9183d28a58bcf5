// The public API, as any client calls it: `Authorization: Bearer <API key>`, JSON in and out.
// The key lives in sessionStorage only: never in a URL, a cookie or localStorage, and gone with the tab.

const KEY_NAME = "ksflow.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY_NAME); },
  set key(value) { sessionStorage.setItem(KEY_NAME, value); },
  clear() { sessionStorage.removeItem(KEY_NAME); },
};

export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

/** FastAPI-style `detail` (a string, or a list of `{loc, msg}`) as one sentence. */
function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body" && p !== "query").join(".") : "";
      return where ? `${where}: ${d.msg}` : String(d.msg);
    }).join("; ");
  }
  return `The API answered HTTP ${status}`;
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === "") continue;
    (Array.isArray(value) ? value : [value]).forEach((v) => params.append(name, String(v)));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

/**
 * Call the API; resolves to the parsed body (null for 204), rejects with an ApiError that says why.
 * A 401 means the key stopped working: listeners of "ksflow:signed-out" send the user to sign in.
 */
export async function api(method, path, { query, body, key } = {}) {
  const headers = { Accept: "application/json" };
  const apiKey = key || session.key;
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The API could not be reached. Is the service running?", null);
  }
  if (response.status === 204) return null;
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    if (response.status === 401 && !key) window.dispatchEvent(new CustomEvent("ksflow:signed-out"));
    throw new ApiError(response.status, describe(response.status, parsed), parsed && parsed.detail);
  }
  return parsed;
}

export const get = (path, query, key) => api("GET", path, { query, key });
export const post = (path, body, query) => api("POST", path, { body, query });

/**
 * For a refresh whose API errors the page already shows: anything else is a fault in the page, reported as
 * an uncaught error (to the browser's console) instead of disappearing.
 */
export function reportUnexpected(error) {
  if (!(error instanceof ApiError)) window.reportError(error);
}
