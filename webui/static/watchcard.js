// The "watch a reboot" card: one button starts a server-side watch (shared
// with every other page and the CLI); a stepper follows drop →
// authentication → new session → HTTP access; the verdict comes in plain
// words with a sound and a notification; "copy summary" fetches the text for
// the ticket in the page's language and the browser's time zone.

import { el, set, join, keepFocus } from "./dom.js";
import { t, lang, causeText, rejectReason } from "./i18n.js";
import { clock, fullDate, stopwatch } from "./fmt.js";
import { api, APIError } from "./api.js";
import * as alert from "./alert.js";

const order = { waiting_drop: 0, dropped: 1, authenticating: 2, online: 3, reachable: 4 };
const timeouts = [2, 5, 10, 15, 30];
const agentKey = "authwatch.agent";
const timeoutKey = "authwatch.timeout";
const lastKey = (login) => "authwatch.watch." + login;

// Where each failing verdict stopped the reboot.
const failedAt = { no_drop: "dropped", no_attempt: "authenticating", auth_failing: "authenticating", online_unreachable: "reachable", mac_changed: "online", online_blocked: "online" };
const verdictTone = { ok: "ok", mac_changed: "warn", no_drop: "warn", cancelled: "quiet", auth_failing: "bad", no_attempt: "bad", online_unreachable: "bad", online_blocked: "bad" };

export class WatchCard {
  /** ctx: announce(text, assertive). */
  constructor(login, ctx) {
    this.login = login;
    this.ctx = ctx;
    this.view = null; // the watch.View shown
    this.receivedAt = 0; // when it arrived, for the running timer
    this.seenRunning = new Set(); // ids this page saw running: their end is news
    this.alerted = new Set();
    this.summaryText = "";
    this.copyStatus = "";
    this.busy = false;
    this.error = "";
    // endOffer(view) returns the "end the stale session" offer for a
    // watch that saw "Multiple logins", or null (set by the customer view).
    this.endOffer = null;
    this.node = el("section", { class: "card watch", id: "watch", "aria-labelledby": "watch-title" });
    this.render();
  }

  get running() { return !!this.view && !this.view.verdict; }

  /** fromSnapshot takes the running watches a (re)connection reports. */
  async fromSnapshot(watches) {
    const mine = (watches ?? []).filter((w) => w.login === this.login).sort((a, b) => a.started.localeCompare(b.started));
    if (mine.length) {
      this.set(mine[mine.length - 1]);
      return;
    }
    // Not running any more: it ended while we were away (or before a
    // reload). Ask for how it ended.
    const id = this.view?.id ?? sessionStorage.getItem(lastKey(this.login));
    if (!id || (this.view && this.view.verdict)) return;
    try {
      this.set(await api("api/watches/" + encodeURIComponent(id)));
    } catch (e) {
      if (e instanceof APIError && e.status === 404) sessionStorage.removeItem(lastKey(this.login));
    }
  }

  /** set shows v if it is this card's watch or a newer one. */
  set(v) {
    if (!v || v.login !== this.login) return;
    if (this.view && v.id !== this.view.id && v.started < this.view.started) return;
    const wasRunning = this.running && this.view.id === v.id;
    const stepBefore = this.view?.id === v.id ? this.view.step : null;
    this.view = v;
    this.receivedAt = Date.now();
    sessionStorage.setItem(lastKey(this.login), v.id);
    if (!v.verdict) this.seenRunning.add(v.id);
    if (v.id !== this.summaryFor) {
      this.summaryText = "";
      this.copyStatus = "";
    }
    this.render();
    if (v.verdict && this.seenRunning.has(v.id) && !this.alerted.has(v.id)) {
      this.alerted.add(v.id);
      this.ended(v);
    } else if (wasRunning && stepBefore && stepBefore !== v.step) {
      if (order[v.step] > 0) this.ctx.announce(t("step." + v.step), false);
    }
  }

  ended(v) {
    const good = v.verdict === "ok";
    const text = v.verdict_text?.[lang] ?? t("verdict." + v.verdict);
    alert.beep(good);
    alert.notify(t("watch.notifyTitle", v.login, t("verdict." + v.verdict)), text, "authwatch-" + v.id);
    alert.flagTitle(t("verdict." + v.verdict));
    this.ctx.announce(t("verdict." + v.verdict) + ". " + text, true);
    this.node.dataset.alerted = v.verdict;
  }

  /** tick moves the timer on. */
  tick() {
    if (!this.running) return;
    const secs = this.elapsed();
    const timer = this.node.querySelector(".timer-value");
    if (timer) timer.textContent = stopwatch(secs);
    const bar = this.node.querySelector("progress");
    if (bar) bar.value = Math.min(secs, this.view.timeout);
  }

  elapsed() {
    const v = this.view;
    if (!v) return 0;
    if (v.verdict) return v.elapsed;
    // The server's elapsed plus our own clock since: immune to clock skew.
    return v.elapsed + (Date.now() - this.receivedAt) / 1000;
  }

  async start(form) {
    if (this.busy) return;
    alert.prepare();
    const ticket = form.elements.ticket.value.trim();
    const agent = form.elements.agent.value.trim();
    const minutes = Number(form.elements.timeout.value) || 5;
    this.draftTicket = ticket; // kept if the start fails
    localStorage.setItem(agentKey, agent);
    localStorage.setItem(timeoutKey, String(minutes));
    this.busy = true;
    this.error = "";
    this.render();
    try {
      const body = { login: this.login, timeout: minutes * 60 };
      if (ticket) body.ticket = ticket;
      if (agent) body.agent = agent;
      const v = await api("api/watches", { method: "POST", body });
      this.busy = false;
      this.draftTicket = "";
      this.view = null;
      this.set(v);
      // Focus the card, not its Stop button: a stray Enter must not end it.
      this.node.querySelector("#watch-title")?.focus();
    } catch (e) {
      this.busy = false;
      this.error = t("watch.startErr", e.message);
      this.render();
    }
  }

  async cancel() {
    if (!this.running) return;
    try {
      this.set(await api("api/watches/" + encodeURIComponent(this.view.id), { method: "DELETE" }));
    } catch (e) {
      this.error = e.message;
      this.render();
    }
  }

  /** again goes back to the form for a new watch. */
  again() {
    this.view = null;
    sessionStorage.removeItem(lastKey(this.login));
    this.render();
    this.node.querySelector("#watch-ticket")?.focus();
  }

  /** shortcut is the "w" key: to the form, or a new watch after a verdict. */
  shortcut() {
    if (this.view && !this.view.verdict) return;
    if (this.view) this.again();
    else this.node.querySelector("#watch-ticket")?.focus();
  }

  async copySummary() {
    const v = this.view;
    if (!v) return;
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    const q = new URLSearchParams({ lang });
    if (tz) q.set("tz", tz);
    try {
      this.summaryText = await api(`api/watches/${encodeURIComponent(v.id)}/summary?${q}`, { text: true });
      this.summaryFor = v.id;
    } catch (e) {
      this.copyStatus = t("watch.copyErr", e.message);
      this.render();
      return;
    }
    this.copyStatus = (await copy(this.summaryText, this.node)) ? t("watch.copied") : t("watch.copyManual");
    this.render();
    const area = this.node.querySelector("#summary");
    if (area && this.copyStatus === t("watch.copyManual")) {
      area.focus();
      area.select();
    }
    this.ctx.announce(this.copyStatus, false);
  }

  render() {
    keepFocus(this.node, () => this.draw());
  }

  draw() {
    const v = this.view;
    this.node.dataset.state = !v ? "idle" : v.verdict ? "ended" : "running";
    if (v?.verdict) this.node.dataset.verdict = v.verdict;
    else delete this.node.dataset.verdict;
    if (!v) {
      set(this.node, this.renderForm());
      return;
    }
    const tone = v.verdict ? verdictTone[v.verdict] ?? "quiet" : "info";
    set(this.node,
      el("div", { class: "card-head" },
        el("h2", { id: "watch-title", tabindex: "-1" }, v.verdict ? t("watch.ended") : t("watch.running")),
        el("span", { class: "watch-who muted" }, join(v.ticket && t("watch.ticketLine", v.ticket), v.agent && t("watch.agentLine", v.agent))),
        el("span", { class: "timer", title: t("watch.elapsed") },
          el("span", { class: "timer-value" }, stopwatch(this.elapsed())),
          el("span", { class: "muted timer-limit" }, t("watch.limit", stopwatch(v.timeout))),
        ),
      ),
      v.verdict ? null : el("progress", { class: "watch-progress", max: v.timeout, value: Math.min(this.elapsed(), v.timeout), "aria-label": t("watch.elapsed") }),
      // The verdict comes first: it is what the agent tells the customer.
      v.verdict
        ? el("div", { class: "verdict tone-" + tone, id: "verdict", role: "status" },
          el("strong", { class: "verdict-title" }, t("verdict." + v.verdict)),
          el("p", { class: "verdict-text" }, v.verdict_text?.[lang] ?? ""),
          t("advice." + v.verdict) ? el("p", { class: "verdict-advice" }, t("advice." + v.verdict)) : null)
        : null,
      this.endOffer?.(v),
      v.outage ? el("p", { class: "banner-inline tone-warn" }, t("now.outage", v.outage.nas, clock(v.outage.since), v.outage.cause)) : null,
      this.renderSteps(v),
      v.verdict ? null : el("p", { class: "hint", id: "watch-hint" }, t("hint." + (v.step === "online" && !v.probing ? "reachable" : v.step))),
      v.notes?.length ? el("ul", { class: "notes", "aria-label": t("watch.notes") }, v.notes.map((n) => el("li", {}, n))) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", class: "watch-copy", id: "watch-copy", on: { click: () => this.copySummary() } }, t("watch.copy"), el("kbd", {}, "C")),
        v.verdict
          ? el("button", { type: "button", class: "watch-again", id: "watch-again", on: { click: () => this.again() } }, t("watch.again"), el("kbd", {}, "W"))
          : el("button", { type: "button", class: "watch-stop secondary", id: "watch-stop", on: { click: () => this.cancel() } }, t("watch.stop")),
      ),
      this.error ? el("p", { class: "error", role: "alert" }, this.error) : null,
      this.summaryText || this.copyStatus
        ? el("div", { class: "summary" },
          el("p", { class: "copy-status", role: "status" }, this.copyStatus),
          this.summaryText ? el("label", { for: "summary", class: "sr-only" }, t("watch.summary")) : null,
          this.summaryText ? el("textarea", { id: "summary", readonly: true, rows: Math.min(10, this.summaryText.split("\n").length + 1), value: this.summaryText, spellcheck: "false" }) : null)
        : null,
    );
  }

  renderForm() {
    const agent = localStorage.getItem(agentKey) ?? "";
    const minutes = Number(localStorage.getItem(timeoutKey)) || 5;
    const form = el("form", { class: "watch-form", on: { submit: (e) => { e.preventDefault(); this.start(form); } } },
      el("div", { class: "field" },
        el("label", { for: "watch-ticket" }, t("watch.ticket"), " ", el("span", { class: "muted" }, "(" + t("watch.optional") + ")")),
        el("input", { id: "watch-ticket", name: "ticket", maxlength: 64, autocomplete: "off", value: this.draftTicket ?? "" })),
      el("div", { class: "field" },
        el("label", { for: "watch-agent" }, t("watch.agent"), " ", el("span", { class: "muted" }, "(" + t("watch.optional") + ")")),
        el("input", { id: "watch-agent", name: "agent", maxlength: 64, autocomplete: "name", value: agent })),
      el("div", { class: "field narrow" },
        el("label", { for: "watch-timeout" }, t("watch.timeout")),
        el("select", { id: "watch-timeout", name: "timeout" },
          timeouts.map((m) => el("option", { value: m, selected: m === minutes ? "" : null }, t("watch.minutes", m))))),
      el("button", { type: "submit", class: "primary big", id: "watch-start", disabled: this.busy }, this.busy ? t("watch.starting") : t("watch.start"), el("kbd", {}, "W")),
    );
    return [
      el("div", { class: "card-head" }, el("h2", { id: "watch-title" }, t("watch.title"))),
      el("p", { class: "muted intro" }, t("watch.intro")),
      form,
      this.error ? el("p", { class: "error", role: "alert" }, this.error) : null,
    ];
  }

  renderSteps(v) {
    const cur = order[v.step] ?? 0;
    const steps = ["dropped", "authenticating", "online"];
    if (v.probing) steps.push("reachable");
    const failed = v.verdict ? failedAt[v.verdict] : null;
    return el("ol", { class: "stepper", "aria-label": t("watch.running") }, steps.map((s) => {
      const idx = order[s];
      const mark = (v.marks ?? []).find((m) => m.step === s);
      let state;
      if (idx < cur) state = mark ? "done" : "skipped";
      else if (idx === cur) state = s === "authenticating" ? "current" : "done";
      else state = "pending";
      if (state === "pending" && !v.verdict && (idx === cur + 1 && v.step !== "authenticating")) state = "current";
      if (v.verdict) {
        if (s === failed && (state === "current" || state === "pending" || (s === "online" && state === "done"))) state = v.verdict === "mac_changed" || v.verdict === "online_blocked" ? "warn" : "failed";
        else if (state === "current") state = v.verdict === "cancelled" ? "pending" : "failed";
      }
      if (v.verdict === "no_drop" && s === "dropped") state = "failed";
      const at = mark?.at;
      return el("li", { class: "step " + state, "data-step": s, "aria-current": state === "current" ? "step" : null },
        el("span", { class: "step-icon", "aria-hidden": "true" }),
        el("div", { class: "step-body" },
          el("div", { class: "step-head" },
            el("strong", {}, t("step." + s)),
            at ? el("time", { datetime: at, title: fullDate(at), class: "step-time" }, clock(at), " ", el("span", { class: "muted" }, "+" + stopwatch((new Date(at) - new Date(v.started)) / 1000))) : null,
            state === "skipped" ? el("span", { class: "muted step-time" }, t("step.skipped")) : null,
          ),
          this.stepDetail(v, s, mark),
        ),
      );
    }));
  }

  stepDetail(v, s, mark) {
    switch (s) {
      case "dropped": {
        const note = mark?.note ?? "";
        const before = v.before ? t("watch.before", join(v.before.ip, v.before.mac, v.before.nas)) : "";
        return el("div", { class: "step-detail" }, join(note && join(note, causeText(note))), before ? el("div", { class: "muted" }, before) : null);
      }
      case "authenticating": {
        const rejects = v.rejects ?? [];
        if (!rejects.length && !v.accepts) return null;
        const counts = new Map();
        for (const r of rejects) {
          const why = rejectReason(r.reason) || r.reason || "?";
          counts.set(why, (counts.get(why) ?? 0) + 1);
        }
        const reasons = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([why]) => why).join(", ");
        return el("div", { class: "step-detail" },
          rejects.length ? el("div", { class: "rejects-line" }, t("step.rejects", rejects.length, reasons)) : null,
          v.accepts ? el("div", { class: "muted" }, t("step.accepts", v.accepts)) : null,
          rejects.length ? el("ul", { class: "rejects" }, rejects.slice(-5).map((r) =>
            el("li", {}, el("time", { datetime: r.at, title: fullDate(r.at) }, clock(r.at)), " ", rejectReason(r.reason) || r.reason, r.reason && rejectReason(r.reason) ? el("span", { class: "muted" }, " (" + r.reason + ")") : null))) : null,
        );
      }
      case "online": {
        const a = v.after;
        if (!a) return null;
        const changed = v.before?.mac && a.mac && v.before.mac !== a.mac;
        return el("div", { class: "step-detail" }, t("step.online.detail", a.ip || "—", a.mac || "—", a.nas || "—"),
          changed ? el("div", { class: "warn-text" }, t("step.macChanged", v.before.mac)) : null);
      }
      case "reachable": {
        const h = v.http;
        if (!h) return null;
        const what = h.up ? h.title || h.reason : h.reason;
        return el("div", { class: "step-detail" }, h.tries > 1 ? t("step.httpTries", h.tries, what) : what);
      }
    }
    return null;
  }
}

// copy puts text on the clipboard: the async API where the page is a secure
// context, the old execCommand otherwise (plain http on the LAN).
async function copy(text, scope) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* denied or unfocused: try the old way */ }
  const area = el("textarea", { class: "offscreen", readonly: true, value: text, "aria-hidden": "true" });
  scope.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  area.remove();
  return ok;
}
