// "End session": ends a customer's stale session at the concentrator (the
// server picks RFC 5176 Disconnect-Request or RouterOS /ppp/active/remove),
// after a confirmation that names what is about to be cut. It is the fix
// when a reboot ends in "Multiple logins": the old session still holds the
// login. Admins may; agents when the server allows it. Everyone sees the
// button, disabled with the reason for those who may not, so that an agent
// knows it exists and whom to ask.

import { el, set } from "./dom.js";
import { t } from "./i18n.js";
import { duration } from "./fmt.js";
import { api, customerPath } from "./api.js";

// Whether this account may end sessions: GET /api/me's may_disconnect and
// no_disconnect, asked once per page load.
let rights = null;
function loadRights() {
  rights ??= api("api/me")
    .then((me) => ({ known: true, may: !!me.may_disconnect, why: me.no_disconnect || "" }))
    .catch(() => {
      rights = null;
      return { known: false, may: false, why: "" };
    });
  return rights;
}

const uptime = (s) => duration((Date.now() - new Date(s.start)) / 1000);

export class EndSession {
  /** ctx: announce(text, assertive); onChange redraws what shows the buttons. */
  constructor(login, ctx, onChange) {
    this.login = login;
    this.ctx = ctx;
    this.onChange = onChange;
    this.busy = false;
    this.result = null; // {key, arg, tone} of the last press
    this.rights = { known: false, may: false, why: "" };
    loadRights().then((r) => {
      this.rights = r;
      this.onChange();
    });
  }

  /** notAllowed is why the button is disabled, in the page's words ("" when it is not). */
  notAllowed() {
    if (!this.rights.known || this.rights.may) return "";
    return /not available/.test(this.rights.why) ? t("end.unavailable") : t("end.notAllowed");
  }

  /** button ends session s (a session of the customer's state) after a confirmation. */
  button(s, { small = false, id = null } = {}) {
    const why = this.notAllowed();
    return el("button", {
      type: "button", class: "danger" + (small ? " small" : ""), id,
      disabled: this.busy || !this.rights.may, title: why || null,
      "data-session": s.session_id, "data-nas": s.nas,
      on: { click: () => this.confirm(s) },
    }, t("end.button"));
  }

  /** status is the reason the button is off, or the last press's result. */
  status() {
    if (this.result) return el("span", { class: "end-result tone-text-" + this.result.tone, role: "status" }, t(this.result.key, this.result.arg));
    const why = this.notAllowed();
    return why ? el("span", { class: "end-why muted" }, why) : null;
  }

  confirm(s) {
    if (this.busy || !this.rights.may) return;
    const d = document.getElementById("end-confirm") ?? document.body.appendChild(el("dialog", { id: "end-confirm", "aria-labelledby": "end-confirm-title" }));
    const cancel = el("button", { type: "button", class: "secondary", id: "end-cancel", on: { click: () => d.close() } }, t("end.cancel"));
    set(d,
      el("h2", { id: "end-confirm-title" }, t("end.confirmTitle")),
      el("p", { id: "end-confirm-text" }, t("end.confirmText", this.login, s.nas, s.ip || "—", uptime(s))),
      el("p", { class: "muted" }, t("end.confirmWhat")),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "danger", id: "end-ok", on: { click: () => { d.close(); this.run(s); } } }, t("end.confirmButton")),
        cancel),
    );
    d.showModal();
    cancel.focus(); // the safe choice is the default one
  }

  async run(s) {
    this.busy = true;
    this.result = { key: "end.running", tone: "quiet" };
    this.onChange();
    try {
      const r = await api(customerPath(this.login) + "/disconnect", { method: "POST", body: { session_id: s.session_id } });
      this.result = {
        done: { key: "end.done", arg: r.via, tone: "ok" },
        refused: { key: "end.refused", arg: r.detail, tone: "bad" },
        timeout: { key: "end.timeout", arg: r.detail, tone: "bad" },
      }[r.result] ?? { key: "end.error", arg: r.detail, tone: "bad" };
    } catch (e) {
      const key = { 409: "end.inFlight", 404: "end.noSession", 403: "end.forbidden" }[e.status] ?? "end.error";
      this.result = { key, arg: e.message, tone: "bad" };
    }
    this.busy = false;
    this.onChange();
    this.ctx.announce(t(this.result.key, this.result.arg), this.result.tone === "bad");
  }

  /**
   * offer is what a watch shows when a reject said "Multiple logins" while
   * a session of the login is still listed: the fix, one button away. v is
   * the watch, sessions the customer's open sessions.
   */
  offer(v, sessions) {
    if (!v?.multiple_logins || !sessions?.length) return null;
    // The stale one is the session the watch started with, when it is
    // still there; otherwise the oldest listed.
    const s = sessions.find((x) => v.stale && x.nas === v.stale.nas && x.session_id === v.stale.session_id) ?? sessions[0];
    return el("div", { class: "end-offer banner-inline tone-warn", id: "end-offer" },
      el("p", {}, t("end.offer", s.nas, s.ip || "—", uptime(s))),
      el("div", { class: "actions" }, this.button(s, { id: "end-offer-button" }), this.status()));
  }
}
