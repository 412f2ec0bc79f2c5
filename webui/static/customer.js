// The customer's page (#/c/<login>): "Now" (the big status), the reboot
// watch, and the timeline, all live over one websocket.

import { el, set, join, keepFocus } from "./dom.js";
import { t, causeText, rejectReason, planText } from "./i18n.js";
import { clock, relative, fullDate, duration } from "./fmt.js";
import { api, customerPath } from "./api.js";
import { LiveStream } from "./live.js";
import { Timeline } from "./timeline.js";
import { WatchCard } from "./watchcard.js";
import { EndSession } from "./endsession.js";

const updatesKey = "authwatch.updates";

// isInterim tells the periodic accounting updates (traffic counters, every
// few minutes) that the timeline hides unless asked; updates that say
// something (RouterOS giving the session its IP, "already up") stay.
const isInterim = (ev) => {
  if (ev.kind !== "session.update" || ev.reason) return false;
  const d = ev.detail ?? {};
  return !!(d.input_octets || d.output_octets || d.session_time);
};

export class CustomerView {
  /** ctx: setConn(status, stream), notice(text, tone), announce(text, assertive). */
  constructor(login, ctx) {
    this.login = login;
    this.ctx = ctx;
    this.state = null;
    this.outages = [];
    this.probe = { busy: false, key: "", arg: "", tone: "" }; // the last "test HTTP access"
    this.olderDone = false;
    this.showUpdates = localStorage.getItem(updatesKey) === "1";

    this.watch = new WatchCard(login, ctx);
    this.end = new EndSession(login, ctx, () => {
      this.renderNow();
      this.watch.render();
    });
    // A watch that sees "Multiple logins" offers to end the stale session.
    this.watch.endOffer = (v) => this.end.offer(v, this.state?.sessions);
    this.timeline = new Timeline({ filter: (ev) => this.showUpdates || !isInterim(ev) });
    this.now = el("section", { class: "card now", id: "now", "aria-labelledby": "now-title" });
    this.srStatus = el("p", { class: "sr-only", "aria-live": "polite" });
    this.tlHead = el("div", { class: "card-head" });
    this.olderBtn = el("button", { type: "button", class: "secondary small older", on: { click: () => this.loadOlder() } });
    this.title = el("h1", { id: "view-title", tabindex: "-1" });
    this.linkBtn = el("button", { type: "button", class: "secondary small", on: { click: () => this.copyLink() } });
    this.node = el("div", { class: "view customer" },
      el("div", { class: "view-head" }, this.title, this.linkBtn),
      el("div", { class: "cols" },
        el("div", { class: "col-main" }, this.now, this.watch.node, this.srStatus),
        el("section", { class: "card col-side", "aria-labelledby": "tl-title" }, this.tlHead, this.timeline.node,
          el("div", { class: "older-wrap" }, this.olderBtn)),
      ),
    );
    this.stream = new LiveStream(login, {
      onSnapshot: (msg, info) => this.onSnapshot(msg, info),
      onEvent: (ev, state) => {
        this.timeline.add(ev);
        if (state) this.setState(state);
      },
      onState: (state) => this.setState(state),
      onWatch: (w) => this.watch.set(w),
      onOutage: (o) => this.addOutage(o),
      onStatus: (s) => ctx.setConn(s, this.stream),
    });
  }

  mount() {
    this.renderHead();
    this.renderNow();
    this.stream.start();
    this.fetchOutages();
    this.ticker = setInterval(() => this.tick(), 1000);
    this.slowTicker = setInterval(() => {
      this.timeline.tick();
      this.updateSince();
    }, 5000);
    this.outageTicker = setInterval(() => this.fetchOutages(), 30000);
  }

  unmount() {
    this.stream.stop();
    clearInterval(this.ticker);
    clearInterval(this.slowTicker);
    clearInterval(this.outageTicker);
  }

  relang() {
    this.renderHead();
    this.renderNow();
    this.watch.render();
    this.timeline.refresh();
  }

  /** key handles the view's shortcuts; it reports whether it did. */
  key(k) {
    switch (k) {
      case "w": this.watch.shortcut(); return true;
      case "c": this.watch.copySummary(); return true;
      case "t": this.runProbe(); return true;
    }
    return false;
  }

  onSnapshot(msg, info) {
    if (info.first || info.reset) {
      this.timeline.reset(msg.events);
      this.olderDone = false;
      this.renderHead();
    } else {
      this.timeline.add(...msg.events);
    }
    this.setState(msg.state);
    this.watch.fromSnapshot(msg.watches);
    if (info.reset) this.ctx.notice(t("conn.reset"), "warn");
    else if (info.truncated) this.ctx.notice(t("conn.truncated", msg.events.length), "warn");
    else if (info.missed !== null) this.ctx.notice(info.missed ? t("conn.recovered", info.missed) : t("conn.recoveredNone"), "ok");
  }

  setState(s) {
    if (!s || s.login !== this.login) return;
    const before = this.state;
    this.state = s;
    this.renderNow();
    if ((before?.sessions?.length ?? 0) !== (s.sessions?.length ?? 0)) this.watch.render(); // its "end session" offer
    if (before && before.known && (before.online !== s.online)) {
      const text = t("status.changed", this.login, s.online ? t("status.online") : t("status.offline"));
      this.srStatus.textContent = text;
    }
  }

  tick() {
    this.watch.tick();
    const up = this.now.querySelector("#uptime");
    const s = this.state?.sessions?.at(-1);
    if (up && s) up.textContent = duration((Date.now() - new Date(s.start)) / 1000);
  }

  async fetchOutages() {
    try {
      this.outages = (await api("api/outages")).outages ?? [];
      this.renderNow();
    } catch { /* the next try will do */ }
  }

  addOutage(o) {
    this.outages = [o, ...this.outages.filter((x) => x.nas !== o.nas)];
    this.renderNow();
  }

  async loadOlder() {
    const before = this.timeline.oldestSeq;
    const q = new URLSearchParams({ limit: "100" });
    if (before) q.set("before", String(before));
    this.olderBtn.disabled = true;
    try {
      const page = await api(customerPath(this.login) + "/events?" + q);
      this.timeline.insert(page.events ?? []);
      this.olderDone = !page.more;
    } catch (e) {
      this.ctx.notice(e.message, "bad");
    }
    this.olderBtn.disabled = false;
    this.renderHead();
  }

  async runProbe() {
    if (this.probe.busy) return;
    this.probe = { busy: true, key: "now.probing", tone: "quiet" };
    this.renderNow();
    for (let attempt = 0; ; attempt++) {
      try {
        const ev = await api(customerPath(this.login) + "/probe", { method: "POST" });
        const up = ev.kind === "http.up";
        const what = up ? ev.detail?.http_title || ev.reason : ev.reason;
        this.probe = { busy: false, key: up ? "now.probeUp" : "now.probeDown", arg: what, tone: up ? "ok" : "bad" };
      } catch (e) {
        if (e.status === 429 && attempt < 3) {
          // The server probes a login at most every couple of seconds
          // (the watch may just have done it): wait and try again.
          this.probe = { busy: true, key: "now.probeWait", tone: "quiet" };
          this.renderNow();
          await new Promise((r) => setTimeout(r, 2500));
          continue;
        }
        const why = e.status === 409 ? t("now.probeNoSession") : e.status === 403 ? t("now.probeNotAllowed") : e.message;
        this.probe = { busy: false, key: "now.probeErr", arg: why, tone: "bad" };
      }
      break;
    }
    this.renderNow();
    this.ctx.announce(t(this.probe.key, this.probe.arg), false);
  }

  async copyLink() {
    const url = location.href;
    try {
      await navigator.clipboard.writeText(url);
      this.ctx.notice(url, "ok");
    } catch {
      this.ctx.notice(url, "quiet");
    }
  }

  renderHead() {
    set(this.title, this.login);
    this.linkBtn.textContent = t("link.copy");
    set(this.tlHead,
      el("h2", { id: "tl-title" }, t("tl.title")),
      el("label", { class: "toggle" },
        el("input", { type: "checkbox", id: "show-updates", checked: this.showUpdates, on: { change: (e) => {
          this.showUpdates = e.target.checked;
          localStorage.setItem(updatesKey, this.showUpdates ? "1" : "0");
          this.timeline.setFilter(this.timeline.filter);
        } } }),
        " ", t("tl.updates")),
    );
    this.olderBtn.textContent = this.olderDone ? t("tl.noOlder") : t("tl.older");
    this.olderBtn.disabled = this.olderDone;
  }

  relevantOutages() {
    const s = this.state;
    const nas = new Set([...(s?.sessions ?? []).map((x) => x.nas), s?.last_stop?.nas, this.watch.view?.before?.nas].filter(Boolean));
    return this.outages.filter((o) => nas.has(o.nas));
  }

  /** updateSince ages "online since … (3 min ago)" without a redraw. */
  updateSince() {
    const s = this.state;
    const since = this.now.querySelector(".status-since");
    if (since && s?.since) since.textContent = t(s.online ? "status.onlineSince" : "status.offlineSince", clock(s.since), relative(s.since));
  }

  renderNow() {
    keepFocus(this.now, () => this.drawNow());
  }

  /** blockBadges shows a block or reduction for non-payment, online or not: the procedure checks it first. */
  blockBadges(s) {
    const badge = (b, key, id) => b && el("div", { class: "banner-inline block-badge tone-bad", id, role: "status", title: fullDate(b.since) },
      el("strong", {}, t(key, b.by)), " ", el("span", { class: "muted" }, t("now.blockSince", clock(b.since))),
      el("p", {}, t(key + "Advice")));
    return [badge(s.blocked, "now.blocked", "blocked"), badge(s.reduced, "now.reduced", "reduced")];
  }

  drawNow() {
    const s = this.state;
    const head = el("div", { class: "card-head" }, el("h2", { id: "now-title" }, t("now.title")));
    const outages = this.relevantOutages().map((o) =>
      el("p", { class: "banner-inline tone-warn", role: "status" }, t("now.outage", o.nas, clock(o.since), o.cause)));
    if (!s) {
      set(this.now, head, el("p", { class: "muted" }, t("conn.connecting")));
      return;
    }
    if (!s.known) {
      set(this.now, head,
        el("div", { class: "status tone-quiet", id: "status", "data-status": "unknown" },
          el("span", { class: "status-dot", "aria-hidden": "true" }),
          el("span", { class: "status-word" }, t("status.unknown"))),
        el("p", { class: "muted" }, t("status.unknownText")), outages);
      return;
    }
    const sessions = s.sessions ?? [];
    const cur = sessions.at(-1);
    const since = s.since ? t(s.online ? "status.onlineSince" : "status.offlineSince", clock(s.since), relative(s.since)) : "";
    const fact = (label, value, attrs = {}) => (value ? [el("dt", {}, label), el("dd", attrs, value)] : []);
    const a = s.last_auth, st = s.last_stop, h = s.last_http;
    const authText = a && join(
      a.accepted ? "✔ " + t("now.accepted") : "✖ " + t("now.rejected") + (a.reason ? ": " + (rejectReason(a.reason) || a.reason) : ""),
      clock(a.at), a.nas);
    const stopText = st && join(join(st.reason, causeText(st.reason)), clock(st.at), st.nas);
    const httpText = h && join(h.up ? t("now.httpUp") : t("now.httpDown"), h.up ? h.title : h.reason, clock(h.at));
    set(this.now, head,
      el("div", { class: "status " + (s.online ? "tone-ok" : "tone-bad"), id: "status", "data-status": s.online ? "online" : "offline" },
        el("span", { class: "status-dot", "aria-hidden": "true" }),
        el("span", { class: "status-word" }, s.online ? t("status.online") : t("status.offline")),
        el("span", { class: "status-since", title: s.since ? fullDate(s.since) : null }, since)),
      outages,
      this.blockBadges(s),
      s.online && cur
        ? el("dl", { class: "facts big" },
          fact(t("now.ip"), cur.ip || "—", { class: "mono" }),
          fact(t("now.mac"), cur.mac || "—", { class: "mono" }),
          fact(t("now.nas"), cur.nas),
          fact(t("now.port"), cur.nas_port_id || "—"),
          fact(t("now.uptime"), duration((Date.now() - new Date(cur.start)) / 1000), { id: "uptime" }),
          fact(t("now.session"), cur.session_id, { class: "mono" }),
          fact(t("now.ipv6"), join(s.ipv6?.length ? s.ipv6 : [cur.ipv6_address, cur.ipv6_prefix, cur.delegated_prefix]), { class: "mono", id: "ipv6" }),
          fact(t("now.plan"), planText(s.plan), { id: "plan", title: s.plan }))
        : null,
      sessions.length > 1
        ? el("div", { class: "banner-inline tone-warn" }, t("now.sessions", sessions.length),
          el("ul", {}, sessions.map((x) => el("li", { class: "mono" }, join(x.nas, x.session_id, x.ip, x.mac, clock(x.start)), " ",
            this.end.button(x, { small: true })))))
        : null,
      el("dl", { class: "facts" },
        fact(t("now.lastStop"), stopText, { class: s.online ? "" : "strong" }),
        fact(t("now.lastAuth"), authText, { class: a && !a.accepted ? "bad-text" : "" }),
        fact(t("now.http"), httpText)),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "secondary", id: "probe", disabled: this.probe.busy || !s.online, on: { click: () => this.runProbe() } },
          t("now.probe"), el("kbd", {}, "T")),
        this.probe.key ? el("span", { class: "probe-result tone-text-" + this.probe.tone, role: "status" }, t(this.probe.key, this.probe.arg)) : null,
        s.online && sessions.length === 1 ? this.end.button(cur, { id: "end-session" }) : null,
        s.online ? this.end.status() : null),
    );
  }
}
