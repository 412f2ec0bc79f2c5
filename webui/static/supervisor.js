// The supervisor's page (#/all): every event as it comes (the firehose),
// filtered by kind, concentrator and login; mass-outage notices; the health
// of each concentrator (RADIUS counters, RouterOS connections) and of the
// store; the reboots being watched right now.

import { el, set, join } from "./dom.js";
import { t } from "./i18n.js";
import { clock, relative, fullDate, stopwatch } from "./fmt.js";
import { api } from "./api.js";
import { LiveStream } from "./live.js";
import { Timeline, kindGroups } from "./timeline.js";

const kindsKey = "authwatch.sup.kinds";
const healthEvery = 10000;
const keepEnded = 120000; // ended watches stay listed this long

export class SupervisorView {
  constructor(ctx) {
    this.ctx = ctx;
    this.stats = null;
    this.outages = [];
    this.health = null;
    this.healthErr = "";
    this.routers = [];
    this.watches = new Map(); // id → {view, at}
    this.lastByNas = new Map(); // NAS → newest event time seen
    this.nasSeen = new Set();
    this.paused = false;
    this.ticks = 0;
    this.held = [];
    let kinds = null;
    try { kinds = JSON.parse(localStorage.getItem(kindsKey) ?? "null"); } catch { kinds = null; }
    this.kinds = new Set(Array.isArray(kinds) ? kinds : kindGroups.map(([g]) => g).filter((g) => g !== "update"));
    this.nasFilter = "";
    this.loginFilter = "";

    this.timeline = new Timeline({ firehose: true, filter: (ev) => this.matches(ev) });
    this.title = el("h1", { id: "view-title", tabindex: "-1" });
    this.statsNode = el("span", { class: "muted stats", id: "stats" });
    this.outageNode = el("section", { class: "card", id: "outages", "aria-labelledby": "outages-title" });
    this.healthNode = el("section", { class: "card", id: "health", "aria-labelledby": "health-title" });
    this.watchesNode = el("section", { class: "card", id: "watches", "aria-labelledby": "watches-title" });
    this.filtersNode = el("form", { class: "filters", id: "filters", on: { submit: (e) => e.preventDefault() } });
    this.tlHead = el("div", { class: "card-head" });
    this.node = el("div", { class: "view supervisor" },
      el("div", { class: "view-head" }, this.title, this.statsNode),
      el("div", { class: "cols" },
        el("div", { class: "col-main" }, this.outageNode, this.healthNode, this.watchesNode),
        el("section", { class: "card col-side", "aria-labelledby": "tl-title" }, this.tlHead, this.filtersNode, this.timeline.node),
      ),
    );
    this.stream = new LiveStream("*", {
      onSnapshot: (msg, info) => this.onSnapshot(msg, info),
      onEvent: (ev, state) => this.onEvent(ev, state),
      onState: (s) => this.setStats(s),
      onWatch: (w) => this.onWatch(w),
      onOutage: (o) => {
        this.outages = [o, ...this.outages.filter((x) => x.nas !== o.nas)];
        this.renderOutages();
        this.ctx.announce(t("sup.outage", o.nas, clock(o.since), o.cause, ""), true);
      },
      onStatus: (s) => ctx.setConn(s, this.stream),
    });
  }

  mount() {
    this.renderAll();
    this.stream.start();
    this.poll();
    this.poller = setInterval(() => this.poll(), healthEvery);
    this.ticker = setInterval(() => this.tick(), 1000);
    this.slowTicker = setInterval(() => this.timeline.tick(), 5000);
  }

  // tick moves the watches' timers on and ages the "last event" times;
  // nothing focusable is rebuilt under the agent's hands.
  tick() {
    const now = Date.now();
    for (const span of this.watchesNode.querySelectorAll("[data-id]")) {
      const x = this.watches.get(span.dataset.id);
      if (x && !x.view.verdict) span.textContent = stopwatch(x.view.elapsed + (now - x.at) / 1000);
    }
    if (++this.ticks % 5 === 0) this.renderHealth();
    if ([...this.watches.values()].some((x) => x.view.verdict && now - x.at > keepEnded)) this.renderWatches();
  }

  unmount() {
    this.stream.stop();
    clearInterval(this.poller);
    clearInterval(this.ticker);
    clearInterval(this.slowTicker);
  }

  relang() {
    this.renderAll();
    this.timeline.refresh();
  }

  key() { return false; }

  matches(ev) {
    const group = kindGroups.find(([, kinds]) => kinds.includes(ev.kind))?.[0] ?? "other";
    if (!this.kinds.has(group)) return false;
    if (this.nasFilter && ev.nas !== this.nasFilter) return false;
    if (this.loginFilter && !(ev.login ?? "").toLowerCase().includes(this.loginFilter)) return false;
    return true;
  }

  onSnapshot(msg, info) {
    for (const ev of msg.events) this.note(ev);
    if (info.first || info.reset) this.timeline.reset(msg.events);
    else if (this.paused) this.held.push(...msg.events);
    else this.timeline.add(...msg.events);
    this.setStats(msg.state);
    if (info.reset) this.ctx.notice(t("conn.reset"), "warn");
    else if (info.truncated) this.ctx.notice(t("conn.truncated", msg.events.length), "warn");
    else if (info.missed !== null) this.ctx.notice(info.missed ? t("conn.recovered", info.missed) : t("conn.recoveredNone"), "ok");
    this.renderFilters();
    this.renderHealth();
  }

  onEvent(ev, state) {
    this.note(ev);
    if (this.paused) {
      this.held.push(ev);
      if (this.held.length > this.timeline.max) this.held.shift();
      this.renderHead();
    } else {
      this.timeline.add(ev);
    }
    if (state) this.setStats(state);
  }

  /** note keeps the newest event time per NAS, for the health table. */
  note(ev) {
    if (!ev.nas) return;
    const prev = this.lastByNas.get(ev.nas);
    if (!prev || prev < ev.at) this.lastByNas.set(ev.nas, ev.at);
    if (!this.nasSeen.has(ev.nas)) {
      this.nasSeen.add(ev.nas);
      this.renderFilters();
    }
  }

  setStats(s) {
    if (!s || typeof s.customers !== "number") return;
    this.stats = s;
    this.statsNode.textContent = t("sup.stats", s.customers, s.online, s.sessions);
  }

  onWatch(w) {
    this.watches.set(w.id, { view: w, at: Date.now() });
    this.renderWatches();
  }

  async poll() {
    const [health, routers, outages, watches] = await Promise.allSettled([
      // /healthz answers 503 with the same JSON when something fails.
      fetch("healthz", { headers: { Accept: "application/json" } }).then((r) => r.json()),
      api("api/routers"),
      api("api/outages"),
      api("api/watches"),
    ]);
    if (health.status === "fulfilled") {
      this.health = health.value;
      this.healthErr = "";
    } else {
      this.healthErr = health.reason?.message ?? String(health.reason);
    }
    if (routers.status === "fulfilled") this.routers = routers.value.routers ?? [];
    if (outages.status === "fulfilled") this.outages = outages.value.outages ?? [];
    if (watches.status === "fulfilled") {
      const running = new Set();
      for (const w of watches.value.watches ?? []) {
        running.add(w.id);
        this.watches.set(w.id, { view: w, at: Date.now() });
      }
      // A running watch the server no longer lists ended unseen: drop it.
      for (const [id, x] of this.watches) if (!x.view.verdict && !running.has(id)) this.watches.delete(id);
    }
    for (const r of this.routers) this.nasSeen.add(r.name);
    for (const name of Object.keys(this.health?.checks?.radius?.detail?.nas ?? {})) this.nasSeen.add(name);
    this.renderOutages();
    this.renderHealth();
    this.renderWatches();
    this.renderFilters();
  }

  renderAll() {
    this.title.textContent = t("sup.title");
    if (this.stats) this.setStats(this.stats);
    this.renderHead();
    this.renderFilters(true);
    this.renderOutages();
    this.renderHealth();
    this.renderWatches();
  }

  renderHead() {
    set(this.tlHead,
      el("h2", { id: "tl-title" }, t("tl.titleAll")),
      el("button", { type: "button", class: "secondary small", id: "pause", "aria-pressed": String(this.paused), on: { click: () => this.togglePause() } },
        this.paused ? t("sup.resume", this.held.length) : t("sup.pause")),
    );
  }

  togglePause() {
    this.paused = !this.paused;
    if (!this.paused) {
      this.timeline.add(...this.held);
      this.held = [];
    }
    this.renderHead();
  }

  renderFilters(force = false) {
    const names = [...this.nasSeen].sort();
    const sel = this.filtersNode.querySelector("#f-nas");
    // Rebuilding under the agent's hands would lose focus: only when the
    // NAS list grew (or on a language switch).
    if (!force && sel && sel.options.length === names.length + 1) return;
    set(this.filtersNode,
      el("fieldset", { class: "kinds" },
        el("legend", {}, t("sup.kind")),
        kindGroups.map(([g]) => el("label", { class: "chip" },
          el("input", { type: "checkbox", value: g, checked: this.kinds.has(g), on: { change: (e) => {
            if (e.target.checked) this.kinds.add(g);
            else this.kinds.delete(g);
            localStorage.setItem(kindsKey, JSON.stringify([...this.kinds]));
            this.timeline.setFilter(this.timeline.filter);
          } } }),
          " ", t("kind." + g)))),
      el("div", { class: "field inline" },
        el("label", { for: "f-nas" }, t("sup.nas")),
        el("select", { id: "f-nas", on: { change: (e) => { this.nasFilter = e.target.value; this.timeline.setFilter(this.timeline.filter); } } },
          el("option", { value: "" }, t("sup.allNas")),
          names.map((n) => el("option", { value: n, selected: n === this.nasFilter ? "" : null }, n)))),
      el("div", { class: "field inline" },
        el("label", { for: "f-login" }, t("sup.login")),
        el("input", { id: "f-login", type: "search", value: this.loginFilter, spellcheck: "false", autocomplete: "off", on: { input: (e) => {
          this.loginFilter = e.target.value.trim().toLowerCase();
          this.timeline.setFilter(this.timeline.filter);
        } } })),
    );
  }

  renderOutages() {
    set(this.outageNode,
      el("div", { class: "card-head" }, el("h2", { id: "outages-title" }, t("sup.outages"))),
      this.outages.length
        ? el("ul", { class: "outages" }, this.outages.map((o) => el("li", { class: "banner-inline tone-warn" },
          t("sup.outage", o.nas, clock(o.since), o.cause, o.count ? t("sup.outageCount", o.count) : ""))))
        : el("p", { class: "muted" }, t("sup.noOutage")),
    );
  }

  renderHealth() {
    const h = this.health;
    const rows = [];
    if (h) {
      const rec = h.checks?.recorder;
      const store = h.checks?.store;
      const ok = (rec?.ok ?? true) && (store?.ok ?? true);
      rows.push(row(ok ? "ok" : "bad", t("sup.store"), "",
        ok ? t("sup.storeOk") : t("sup.storeBad", rec?.error || store?.error || "?"),
        join(rec?.detail ? t("sup.queue", rec.detail.queued ?? 0) : "", store?.detail?.ping_ms != null ? `ping ${store.detail.ping_ms} ms` : "")));
      const nas = h.checks?.radius?.detail?.nas ?? {};
      for (const name of Object.keys(nas).sort()) {
        const n = nas[name];
        const packets = Object.values(n.packets ?? {}).reduce((a, b) => a + b, 0);
        const drops = Object.values(n.dropped ?? {}).reduce((a, b) => a + b, 0);
        rows.push(row(drops ? "warn" : "ok", name, t("sup.radius"), this.lastText(name),
          join(t("sup.packets", packets, n.acked ?? 0), drops ? t("sup.drops", drops) : "")));
      }
    }
    for (const r of this.routers) {
      const state = r.connected ? t("sup.connected") + (r.since ? " " + t("sup.since", clock(r.since)) : "") : t("sup.disconnected");
      rows.push(row(r.connected ? "ok" : "bad", r.name, t("sup.routeros"), join(state, this.lastText(r.name)),
        join(r.sessions != null ? t("sup.sessions", r.sessions) : "", r.last_error ? t("sup.error", r.last_error) + (r.last_error_at ? " (" + clock(r.last_error_at) + ")" : "") : "", r.version)));
    }
    // Concentrators seen in events that neither list knows (yet).
    const listed = new Set([...Object.keys(h?.checks?.radius?.detail?.nas ?? {}), ...this.routers.map((r) => r.name)]);
    for (const name of [...this.lastByNas.keys()].sort()) {
      if (!listed.has(name)) rows.push(row("quiet", name, "", this.lastText(name), ""));
    }
    set(this.healthNode,
      el("div", { class: "card-head" }, el("h2", { id: "health-title" }, t("sup.health"))),
      this.healthErr ? el("p", { class: "error" }, t("sup.healthErr", this.healthErr)) : null,
      el("table", { class: "health" }, el("tbody", {}, rows)),
    );
  }

  lastText(nas) {
    const at = this.lastByNas.get(nas);
    return at ? t("sup.lastEvent", relative(at)) : t("sup.noEvent");
  }

  renderWatches() {
    const now = Date.now();
    for (const [id, x] of this.watches) if (x.view.verdict && now - x.at > keepEnded) this.watches.delete(id);
    const list = [...this.watches.values()].sort((a, b) => a.view.started.localeCompare(b.view.started));
    set(this.watchesNode,
      el("div", { class: "card-head" }, el("h2", { id: "watches-title" }, t("sup.watches"))),
      list.length
        ? el("ul", { class: "watch-list" }, list.map(({ view: w, at }) => {
          const elapsed = w.verdict ? w.elapsed : w.elapsed + (now - at) / 1000;
          return el("li", { class: w.verdict ? "ended" : "" },
            el("a", { href: "#/c/" + encodeURIComponent(w.login) }, w.login),
            " ",
            el("span", { class: "mono", "data-id": w.id }, stopwatch(elapsed)),
            " ",
            el("span", { class: "muted" }, join(w.verdict ? t("verdict." + w.verdict) : t("step." + w.step), w.agent, w.ticket && "#" + w.ticket)),
            " ",
            el("span", { class: "muted", title: fullDate(w.started) }, clock(w.started)));
        }))
        : el("p", { class: "muted" }, t("sup.noWatches")),
    );
  }
}

function row(tone, name, kind, state, detail) {
  return el("tr", { class: "tone-" + tone },
    el("td", {}, el("span", { class: "dot", "aria-hidden": "true" })),
    el("th", { scope: "row" }, name),
    el("td", { class: "muted" }, kind),
    el("td", {}, state),
    el("td", { class: "muted" }, detail));
}
