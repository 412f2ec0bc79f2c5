// The JSON API. Every request goes through api(), the one place that will
// see a 401 once accounts exist (issue "Agent accounts"): it then announces
// "authwatch:unauthenticated" on window, and a login view can take over
// without any other part of the page changing.

import { t } from "./i18n.js";

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * api fetches path (relative to the page) and returns the decoded JSON, or
 * the text when opts.text. Errors are APIErrors with the server's message.
 */
export async function api(path, opts = {}) {
  const method = opts.method ?? "GET";
  const init = { method, headers: { Accept: opts.text ? "text/plain" : "application/json" }, credentials: "same-origin" };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  if (method !== "GET" && method !== "HEAD") {
    const token = await csrfToken();
    if (token) init.headers["X-CSRF-Token"] = token;
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch {
    throw new APIError(0, t("err.network"));
  }
  if (r.status === 401) window.dispatchEvent(new CustomEvent("authwatch:unauthenticated"));
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
    if (r.status === 403 && /csrf/i.test(msg) && !opts.retried) {
      // The session changed under us (logged in again elsewhere): new token, once.
      csrf = null;
      return api(path, { ...opts, retried: true });
    }
    throw new APIError(r.status, msg);
  }
  return opts.text ? r.text() : r.json();
}

// With accounts, a session's state-changing requests carry its CSRF token,
// which GET /api/me gives ({"csrf": …}); without them there is none.
let csrf = null;
function csrfToken() {
  csrf ??= fetch("api/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : {}))
    .then((me) => me.csrf ?? "")
    .catch(() => {
      csrf = null;
      return "";
    });
  return csrf;
}

export const customerPath = (login) => "api/customers/" + encodeURIComponent(login);
