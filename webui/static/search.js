// Finding a customer: the lookup API (login prefix, MAC or IP), the recent
// searches kept in localStorage, and the home page that lists both.

import { el, set, join } from "./dom.js";
import { t } from "./i18n.js";
import { clock } from "./fmt.js";
import { api } from "./api.js";

const recentKey = "authwatch.recent";
const maxRecent = 8;

export function recents() {
  try {
    const v = JSON.parse(localStorage.getItem(recentKey) ?? "[]");
    return Array.isArray(v) ? v.filter((x) => typeof x === "string").slice(0, maxRecent) : [];
  } catch {
    return [];
  }
}

/** remember puts login first in the recent searches. */
export function remember(login) {
  const list = [login, ...recents().filter((x) => x !== login)].slice(0, maxRecent);
  localStorage.setItem(recentKey, JSON.stringify(list));
  fillDatalist();
}

/** fillDatalist offers the recent searches under the search box. */
export function fillDatalist() {
  const dl = document.getElementById("recent-list");
  if (dl) set(dl, recents().map((l) => el("option", { value: l })));
}

let cache = null; // the last lookup: {q, answer}

/** lookup asks the server, keeping the answer for the results page. */
export async function lookup(q) {
  if (cache && cache.q === q) return cache.answer;
  const answer = await api("api/lookup?q=" + encodeURIComponent(q));
  cache = { q, answer };
  setTimeout(() => { if (cache?.answer === answer) cache = null; }, 5000);
  return answer;
}

/**
 * destination says where a search leads: a customer's page when the answer
 * is one login (or the exact login typed, or a login never seen yet: the
 * agent may be waiting for its first event), the results page otherwise.
 */
export function destination(q, answer) {
  const results = answer.results ?? [];
  const exact = results.find((r) => r.login === q);
  if (exact) return "#/c/" + encodeURIComponent(exact.login);
  if (results.length === 1) return "#/c/" + encodeURIComponent(results[0].login);
  if (!results.length && answer.query?.kind === "login") return "#/c/" + encodeURIComponent(q);
  return "#/find/" + encodeURIComponent(q);
}

export class HomeView {
  constructor(ctx, query) {
    this.ctx = ctx;
    this.query = query;
    this.answer = null;
    this.error = "";
    this.node = el("div", { class: "view home" });
  }

  async mount() {
    this.render();
    if (!this.query) return;
    try {
      this.answer = await lookup(this.query);
    } catch (e) {
      this.error = t("lookup.error", e.message);
    }
    this.render();
    this.node.querySelector(".results a")?.focus();
  }

  unmount() {}
  relang() { this.render(); }
  key() { return false; }

  render() {
    const list = recents();
    const results = this.answer?.results ?? [];
    set(this.node,
      this.query ? el("section", { class: "card results-card", "aria-labelledby": "view-title" },
        el("h1", { id: "view-title", tabindex: "-1" }, t("home.results", this.query)),
        this.error ? el("p", { class: "error", role: "alert" }, this.error) : null,
        this.answer && !results.length ? el("p", { role: "status" }, t("lookup.none", this.query)) : null,
        results.length ? el("ul", { class: "results" }, results.map((r) => el("li", {},
          el("a", { href: "#/c/" + encodeURIComponent(r.login) }, r.login),
          el("span", { class: "pill " + (r.online ? "tone-ok" : "tone-bad") }, r.online ? t("status.online") : t("status.offline")),
          el("span", { class: "muted" }, join(t("match." + r.match), r.last_seen && clock(r.last_seen)))))) : null,
      ) : null,
      el("section", { class: "card welcome" },
        this.query ? el("h2", {}, t("home.title")) : el("h1", { id: "view-title", tabindex: "-1" }, t("home.title")),
        el("p", {}, t("home.text")),
        el("h2", { class: "small-head" }, t("home.recent")),
        list.length
          ? el("ul", { class: "recent" }, list.map((l) => el("li", {}, el("a", { class: "chip", href: "#/c/" + encodeURIComponent(l) }, l))))
          : el("p", { class: "muted" }, t("home.noRecent")),
        el("p", { class: "muted tip" }, t("home.tip")),
      ),
    );
  }
}
