// Timeline: events newest first, each in plain words with the time relative
// and absolute, expandable to everything the event carries (the raw RADIUS
// or RouterOS attributes included). Used by the customer's page and, with
// the login shown, by the supervisor's firehose.

import { el, join } from "./dom.js";
import { t, has, rejectReason, causeText } from "./i18n.js";
import { clock, relative, fullDate, duration, bytes } from "./fmt.js";

/** describe puts one event in words: {text, hint, meta, tone}. */
export function describe(ev) {
  const d = ev.detail ?? {};
  const kind = ev.kind ?? "";
  let text = has("ev." + kind) ? t("ev." + kind) : kind;
  let hint = "";
  let tone = "info";
  switch (kind) {
    case "auth.reject": {
      const plain = rejectReason(ev.reason);
      text += ": " + (plain || ev.reason || "?");
      if (plain && ev.reason) hint = ev.reason;
      tone = "bad";
      break;
    }
    case "auth.accept":
      tone = "ok";
      break;
    case "session.start":
      tone = "ok";
      break;
    case "session.update":
      hint = ev.reason ?? "";
      tone = "quiet";
      break;
    case "session.stop": {
      const cause = d.terminate_cause || ev.reason || "";
      if (cause) text += ": " + cause;
      hint = join(causeText(cause), ev.reason && ev.reason !== cause ? ev.reason : "");
      tone = "bad";
      break;
    }
    case "nas.up":
    case "nas.down":
      if (ev.reason) text += ": " + ev.reason;
      tone = kind === "nas.down" ? "bad" : "warn";
      break;
    case "http.up":
      if (d.http_title || ev.reason) text += ": " + (d.http_title || ev.reason);
      tone = "ok";
      break;
    case "http.down":
      if (ev.reason) text += ": " + ev.reason;
      tone = "bad";
      break;
    case "action":
      if (ev.reason) text += ": " + ev.reason;
      break;
    case "log":
      text = ev.reason || text;
      tone = "quiet";
      break;
  }
  const traffic = d.input_octets || d.output_octets ? join(t("ev.in", bytes(d.input_octets)), t("ev.out", bytes(d.output_octets))) : "";
  const meta = join(
    ev.nas, ev.ip, d.ipv6_prefix, d.delegated_prefix, ev.mac, d.nas_port_id,
    d.session_time ? t("ev.duration", duration(d.session_time)) : "", traffic,
    d.http_status && kind.startsWith("http") ? "HTTP " + d.http_status : "",
    d.latency_ms ? t("ev.latency", Math.round(d.latency_ms)) : "",
  );
  return { text, hint, meta, tone };
}

// The fields of the raw view, in order; attributes come after, sorted.
const rawFields = ["seq", "at", "kind", "source", "login", "nas", "session_id", "ip", "mac", "reason"];

function rawView(ev) {
  const rows = [];
  for (const f of rawFields) if (ev[f] !== undefined && ev[f] !== "") rows.push([f, ev[f]]);
  const d = ev.detail ?? {};
  for (const [k, v] of Object.entries(d)) if (k !== "attributes") rows.push(["detail." + k, typeof v === "object" ? JSON.stringify(v) : v]);
  const attrs = Object.entries(d.attributes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return el("div", { class: "ev-raw" },
    el("table", { class: "kv" },
      el("caption", { class: "sr-only" }, t("tl.raw")),
      el("tbody", {}, [...rows, ...attrs].map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, String(v))))),
    ),
  );
}

export class Timeline {
  /**
   * opts: firehose (show logins as links), max (events kept), filter
   * (ev → bool), title (heading text key).
   */
  constructor(opts = {}) {
    this.firehose = !!opts.firehose;
    this.max = opts.max ?? 500;
    this.filter = opts.filter ?? (() => true);
    this.events = []; // ascending seq
    this.items = new Map(); // seq → <li>
    this.pending = [];
    this.flushTimer = 0;
    this.list = el("ol", { class: "timeline" });
    this.empty = el("p", { class: "muted empty" }, t("tl.empty"));
    this.node = el("div", { class: "timeline-wrap" }, this.empty, this.list);
  }

  get oldestSeq() { return this.events.length ? this.events[0].seq : 0; }
  get newestSeq() { return this.events.length ? this.events[this.events.length - 1].seq : 0; }

  /** reset shows these events (any order) instead of what was there. */
  reset(events = []) {
    clearTimeout(this.flushTimer);
    this.flushTimer = 0;
    this.pending = [];
    this.events = [];
    this.items.clear();
    this.list.replaceChildren();
    this.insert(events);
  }

  /** add queues events for display; bursts are drawn together. */
  add(...events) {
    this.pending.push(...events);
    if (this.pending.length > this.max) this.pending.splice(0, this.pending.length - this.max);
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 30);
  }

  flush() {
    this.flushTimer = 0;
    const evs = this.pending;
    this.pending = [];
    this.insert(evs);
  }

  insert(evs) {
    evs = evs.filter((ev) => typeof ev?.seq === "number" && !this.items.has(ev.seq)).sort((a, b) => a.seq - b.seq);
    for (const ev of evs) {
      const li = this.item(ev);
      this.items.set(ev.seq, li);
      if (!this.events.length || ev.seq > this.newestSeq) {
        this.events.push(ev);
        this.list.prepend(li);
      } else {
        // Older than the newest: an older page, or a late arrival.
        let i = this.events.findIndex((x) => x.seq > ev.seq);
        if (i < 0) i = this.events.length;
        this.events.splice(i, 0, ev);
        const after = this.events[i + 1];
        const ref = after ? this.items.get(after.seq) : null;
        // The DOM is newest first: our item goes just after the next newer one.
        if (ref) ref.after(li);
        else this.list.prepend(li);
      }
    }
    while (this.events.length > this.max) {
      const ev = this.events.shift();
      this.items.get(ev.seq)?.remove();
      this.items.delete(ev.seq);
    }
    this.updateEmpty();
  }

  setFilter(fn) {
    this.filter = fn;
    for (const ev of this.events) this.items.get(ev.seq).hidden = !fn(ev);
    this.updateEmpty();
  }

  updateEmpty() {
    const shown = this.events.some((ev) => !this.items.get(ev.seq).hidden);
    this.empty.hidden = shown;
    this.empty.textContent = this.events.length ? t("tl.emptyFiltered") : t("tl.empty");
  }

  /** refresh redraws every item (after a language switch). */
  refresh() {
    this.reset([...this.events, ...this.pending]);
  }

  /** tick updates the relative times. */
  tick() {
    const now = Date.now();
    for (const ev of this.events) {
      const rel = this.items.get(ev.seq)?.querySelector(".ev-rel");
      if (rel) rel.textContent = relative(ev.at, now);
    }
  }

  item(ev) {
    const { text, hint, meta, tone } = describe(ev);
    const details = el("details", { on: { toggle: () => { if (details.open && !details.querySelector(".ev-raw")) details.append(rawView(ev)); } } },
      el("summary", {},
        el("span", { class: "ev-dot", "aria-hidden": "true" }),
        el("time", { class: "ev-when", datetime: ev.at, title: fullDate(ev.at) },
          el("span", { class: "ev-abs" }, clock(ev.at)),
          el("span", { class: "ev-rel" }, relative(ev.at)),
        ),
        el("span", { class: "ev-body" },
          this.firehose && ev.login ? el("a", { class: "ev-login", href: "#/c/" + encodeURIComponent(ev.login) }, ev.login) : null,
          el("span", { class: "ev-text" }, text),
          hint ? el("span", { class: "ev-hint" }, hint) : null,
          meta ? el("span", { class: "ev-meta" }, meta) : null,
        ),
      ),
    );
    const li = el("li", { class: "ev ev-" + tone, "data-seq": ev.seq, "data-kind": ev.kind }, details);
    li.hidden = !this.filter(ev);
    return li;
  }
}

/** kindGroups are the supervisor's kind filters (and the customer's updates toggle). */
export const kindGroups = [
  ["reject", ["auth.reject"]],
  ["auth", ["auth.accept"]],
  ["stop", ["session.stop"]],
  ["start", ["session.start"]],
  ["update", ["session.update"]],
  ["nas", ["nas.up", "nas.down"]],
  ["http", ["http.up", "http.down"]],
  ["other", ["action", "log"]],
];
