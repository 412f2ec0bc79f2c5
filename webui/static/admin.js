// The admin's page (#/admin): the accounts (add one, make an agent an admin
// or back, disable or enable, set a new password) and the audit log (who
// looked at which customer, when, from where). The server decides who may:
// an agent gets 403 from /api/users and sees a plain message instead of a
// broken page, and a server without accounts (desk mode) answers 404.
//
// Passwords go to the server and nowhere else: the fields are emptied as
// soon as a form is sent, whatever the answer, and are never shown.

import { el, set, keepFocus } from "./dom.js";
import { t, has } from "./i18n.js";
import { clock, fullDate } from "./fmt.js";
import { api } from "./api.js";

const auditPage = 50; // entries per request; "older entries" asks for the next page

// Accounts are created and changed over months: the date matters, so not
// clock()'s time-of-day-only for today.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "short" });
const when = (v) => {
  const d = new Date(v);
  return v && !Number.isNaN(d.getTime()) && d.getFullYear() > 1 ? dateTime.format(d) : "—";
};

const userPath = (name) => "api/users/" + encodeURIComponent(name);
const roleWord = (role) => (has("role." + role) ? t("role." + role) : role);

export class AdminView {
  /** ctx: announce(text, assertive), notice(text, tone), me() → GET /api/me, reloadMe(). */
  constructor(ctx) {
    this.ctx = ctx;
    this.me = null;
    this.status = "loading"; // loading, ready, forbidden, noAccounts, failed
    this.error = "";
    this.users = [];
    this.busy = new Set(); // names with a change on its way
    this.confirming = ""; // the account whose disabling waits for "Confirmar"
    this.pwFor = ""; // the account whose new-password form is open
    this.pwError = "";
    this.lastError = ""; // of the last failed change, in the page's words
    this.adding = false;
    this.addError = "";
    this.audit = { entries: [], login: "", user: "", more: false, loading: false, error: "", seq: 0 };

    this.title = el("h1", { id: "view-title", tabindex: "-1" });
    this.info = el("div", { id: "admin-info" });
    this.usersNode = el("section", { class: "card", id: "users", "aria-labelledby": "users-title" });
    this.addNode = el("section", { class: "card", id: "user-add-card", "aria-labelledby": "user-add-title" });
    this.auditNode = el("section", { class: "card", id: "audit", "aria-labelledby": "audit-title" });
    this.node = el("div", { class: "view admin" },
      el("div", { class: "view-head" }, this.title),
      this.info, this.usersNode, this.addNode, this.auditNode);
  }

  mount() {
    this.render();
    this.load();
  }

  unmount() {
    this.gone = true;
  }

  relang() {
    this.render();
  }

  key() { return false; }

  async load() {
    try {
      const [me, r] = await Promise.all([this.ctx.me().catch(() => null), api("api/users")]);
      this.me = me;
      this.users = r.users ?? [];
      this.status = "ready";
    } catch (e) {
      if (e.status === 401) return; // app.js is taking the agent to the login screen
      this.status = { 403: "forbidden", 404: "noAccounts" }[e.status] ?? "failed";
      this.error = e.message;
    }
    if (this.gone) return;
    this.render();
    // Otherwise the banner, a role=alert, speaks for itself.
    if (this.status === "ready") {
      this.ctx.announce(t("users.count", this.users.length));
      this.loadAudit(true);
    }
  }

  render() {
    this.title.textContent = t("admin.title");
    const ready = this.status === "ready";
    const why = {
      loading: ["quiet", t("admin.loading")],
      forbidden: ["warn", t("admin.denied")],
      noAccounts: ["warn", t("admin.desk")],
      failed: ["bad", t("admin.loadErr", this.error)],
    }[this.status];
    set(this.info, why ? el("p", { class: "banner-inline tone-" + why[0], id: "admin-status", role: why[0] === "quiet" ? null : "alert" }, why[1]) : null);
    this.usersNode.hidden = this.addNode.hidden = this.auditNode.hidden = !ready;
    if (!ready) return;
    this.renderUsers();
    this.renderAdd();
    this.renderAudit(true);
  }

  // --- accounts ---------------------------------------------------------------

  renderUsers() {
    keepFocus(this.usersNode, () => {
      const users = [...this.users].sort((a, b) => a.name.localeCompare(b.name));
      set(this.usersNode,
        el("div", { class: "card-head" },
          el("h2", { id: "users-title" }, t("users.title")),
          el("span", { class: "muted small" }, t("users.count", users.length))),
        el("div", { class: "table-wrap" },
          el("table", { class: "grid", id: "users-table" },
            el("thead", {}, el("tr", {},
              el("th", { scope: "col" }, t("users.name")),
              el("th", { scope: "col" }, t("users.role")),
              el("th", { scope: "col" }, t("users.state")),
              el("th", { scope: "col" }, t("users.created")),
              el("th", { scope: "col" }, t("users.pwChanged")),
              el("th", { scope: "col" }, t("users.actions")))),
            el("tbody", {}, users.map((u) => this.userRows(u))))),
      );
    });
  }

  userRows(u) {
    const self = this.me?.user === u.name;
    // Buttons stay enabled while a change is on its way (patch ignores a
    // second press): disabling them would drop the keyboard focus.
    const rows = [el("tr", { "data-user": u.name, class: u.disabled ? "off" : "", "aria-busy": this.busy.has(u.name) ? "true" : null },
      el("th", { scope: "row", id: "u-name-" + u.name }, u.name, self ? el("span", { class: "muted small" }, " (" + t("users.you") + ")") : null),
      el("td", { class: "role" }, roleWord(u.role)),
      el("td", { class: "state " + (u.disabled ? "tone-text-bad" : "tone-text-ok") }, u.disabled ? t("users.disabled") : t("users.enabled")),
      el("td", { class: "nowrap", title: fullDate(u.created) }, when(u.created)),
      el("td", { class: "nowrap", title: fullDate(u.password_changed) }, when(u.password_changed)),
      el("td", {}, this.confirming === u.name ? this.confirmStep(u, self) : el("div", { class: "actions" },
        el("button", {
          type: "button", class: "secondary small", id: "u-role-" + u.name, "aria-describedby": "u-name-" + u.name,
          on: { click: () => this.setRole(u, u.role === "admin" ? "agent" : "admin") },
        }, u.role === "admin" ? t("users.makeAgent") : t("users.makeAdmin")),
        el("button", {
          type: "button", class: "secondary small", id: "u-toggle-" + u.name, "aria-describedby": "u-name-" + u.name,
          on: { click: () => (u.disabled ? this.setDisabled(u, false) : this.askDisable(u)) },
        }, u.disabled ? t("users.enable") : t("users.disable")),
        el("button", {
          type: "button", class: "secondary small", id: "u-pw-" + u.name, "aria-describedby": "u-name-" + u.name,
          "aria-expanded": String(this.pwFor === u.name),
          on: { click: () => this.openPassword(u) },
        }, t("users.newPassword")),
      )),
    )];
    if (this.pwFor === u.name) rows.push(el("tr", { class: "pw-row" }, el("td", { colspan: "6" }, this.passwordForm(u, self))));
    return rows;
  }

  confirmStep(u, self) {
    return el("div", { class: "actions confirm", role: "group", "aria-labelledby": "u-confirm-text" },
      el("span", { id: "u-confirm-text", class: "bad-text" }, self ? t("users.confirmDisableSelf") : t("users.confirmDisable", u.name)),
      el("button", { type: "button", class: "danger small", id: "u-confirm-" + u.name, on: { click: () => {
        this.confirming = "";
        this.setDisabled(u, true);
      } } }, t("users.confirm")),
      el("button", { type: "button", class: "secondary small", id: "u-cancel-" + u.name, on: { click: () => {
        this.confirming = "";
        this.renderUsers();
        document.getElementById("u-toggle-" + u.name)?.focus();
      } } }, t("users.cancel")));
  }

  askDisable(u) {
    this.confirming = u.name;
    this.renderUsers();
    // The safe choice is the one under the keyboard.
    document.getElementById("u-cancel-" + u.name)?.focus();
  }

  openPassword(u) {
    this.pwFor = this.pwFor === u.name ? "" : u.name;
    this.pwError = "";
    this.renderUsers();
    (this.pwFor ? document.getElementById("pw-new") : document.getElementById("u-pw-" + u.name))?.focus();
  }

  passwordForm(u, self) {
    const input = el("input", { id: "pw-new", name: "new-password", type: "password", autocomplete: "new-password", spellcheck: "false", "aria-describedby": "pw-hint" + (this.pwError ? " pw-error" : "") });
    return el("form", { class: "inline-form", id: "pw-form", on: { submit: (e) => {
      e.preventDefault();
      const pw = input.value;
      input.value = "";
      this.savePassword(u, pw, self);
    } } },
      el("div", { class: "field" },
        el("label", { for: "pw-new" }, t("users.pwLabel", u.name)),
        input,
        el("span", { class: "muted small", id: "pw-hint" }, self ? t("users.pwHintSelf") : t("users.pwHint"))),
      el("div", { class: "actions" },
        el("button", { type: "submit", class: "small", id: "pw-save" }, t("users.save")),
        el("button", { type: "button", class: "secondary small", id: "pw-cancel", on: { click: () => this.openPassword(u) } }, t("users.cancel"))),
      this.pwError ? el("p", { class: "error", id: "pw-error", role: "alert" }, this.pwError) : null);
  }

  /** patch sends PATCH /api/users/{name} and shows the result; it returns the user, or null. */
  async patch(u, body, done) {
    if (this.busy.has(u.name)) return null;
    this.busy.add(u.name);
    this.renderUsers();
    try {
      const got = await api(userPath(u.name), { method: "PATCH", body });
      this.users = this.users.map((x) => (x.name === got.name ? got : x));
      this.ctx.notice(done(got), "ok");
      return got;
    } catch (e) {
      if (e.status !== 401) this.ctx.notice(t("users.error", u.name, e.message), "bad");
      this.lastError = t("users.error", u.name, e.message);
      return null;
    } finally {
      this.busy.delete(u.name);
      if (!this.gone) this.renderUsers();
    }
  }

  async setRole(u, role) {
    const got = await this.patch(u, { role }, (x) => t("users.roleDone", x.name, roleWord(x.role)));
    // An admin who made themself an agent has just lost this page.
    if (got && this.me?.user === got.name && got.role !== "admin") {
      this.ctx.reloadMe();
      this.load();
    }
  }

  async setDisabled(u, disabled) {
    const got = await this.patch(u, { disabled }, (x) => t(disabled ? "users.disabledDone" : "users.enabledDone", x.name));
    document.getElementById("u-toggle-" + u.name)?.focus();
    // Disabling oneself ends one's sessions: the next request goes to the login screen.
    if (got && disabled && this.me?.user === got.name) api("api/me").catch(() => {});
  }

  async savePassword(u, pw, self) {
    this.pwError = "";
    const got = await this.patch(u, { password: pw }, (x) => t("users.pwDone", x.name));
    if (got) {
      this.pwFor = "";
      this.renderUsers();
      document.getElementById("u-pw-" + u.name)?.focus();
      // A new password ends the account's sessions, this one too when it is ours.
      if (self) api("api/me").catch(() => {});
    } else {
      this.pwError = this.lastError;
      this.renderUsers();
      document.getElementById("pw-new")?.focus();
    }
  }

  // --- new account ------------------------------------------------------------

  renderAdd() {
    // The fields survive a language switch; only the words change.
    const old = (id) => this.addNode.querySelector("#" + id)?.value ?? "";
    const name = old("add-name");
    const role = old("add-role") || "agent";
    const pw = el("input", { id: "add-password", name: "new-password", type: "password", autocomplete: "new-password", spellcheck: "false", value: old("add-password") });
    keepFocus(this.addNode, () => set(this.addNode,
      el("div", { class: "card-head" }, el("h2", { id: "user-add-title" }, t("add.title"))),
      el("form", { class: "inline-form", id: "user-add", autocomplete: "off", on: { submit: (e) => {
        e.preventDefault();
        const password = pw.value;
        pw.value = "";
        this.add(this.addNode.querySelector("#add-name").value, this.addNode.querySelector("#add-role").value, password);
      } } },
        el("div", { class: "field" },
          el("label", { for: "add-name" }, t("add.name")),
          el("input", { id: "add-name", name: "username", type: "text", autocomplete: "off", autocapitalize: "off", spellcheck: "false", maxlength: "64", value: name, "aria-describedby": "add-name-hint" }),
          el("span", { class: "muted small", id: "add-name-hint" }, t("add.nameHint"))),
        el("div", { class: "field narrow" },
          el("label", { for: "add-role" }, t("add.role")),
          el("select", { id: "add-role" },
            ["agent", "admin"].map((r) => el("option", { value: r, selected: r === role ? "" : null }, roleWord(r))))),
        el("div", { class: "field" },
          el("label", { for: "add-password" }, t("add.password")),
          pw,
          el("span", { class: "muted small" }, t("users.pwHintNew"))),
        el("button", { type: "submit", id: "add-submit", disabled: this.adding }, this.adding ? t("add.busy") : t("add.submit"))),
      this.addError ? el("p", { class: "error", id: "add-error", role: "alert" }, this.addError) : null,
    ));
  }

  async add(name, role, password) {
    if (this.adding) return;
    this.adding = true;
    this.addError = "";
    this.renderAdd();
    try {
      const u = await api("api/users", { method: "POST", body: { name, role, password } });
      this.users = [...this.users.filter((x) => x.name !== u.name), u];
      this.addNode.querySelector("#add-name").value = "";
      this.addNode.querySelector("#add-role").value = "agent"; // the safe default for the next one
      this.ctx.notice(t("add.done", u.name, roleWord(u.role)), "ok");
      this.renderUsers();
    } catch (e) {
      if (e.status !== 401) {
        this.addError = t("add.error", e.message);
        this.ctx.notice(this.addError, "bad");
      }
    } finally {
      this.adding = false;
      if (!this.gone) this.renderAdd();
    }
    this.addNode.querySelector(this.addError ? "#add-password" : "#add-name")?.focus();
  }

  // --- audit log --------------------------------------------------------------

  /** loadAudit reads the newest entries (fresh) or the page before the last shown. */
  async loadAudit(fresh) {
    const a = this.audit;
    if (!fresh && (a.loading || !a.entries.length)) return;
    const seq = ++a.seq; // a new filter wins over an answer still on its way
    const q = new URLSearchParams({ limit: String(auditPage) });
    if (a.login) q.set("login", a.login);
    if (a.user) q.set("user", a.user);
    if (!fresh) q.set("before", String(a.entries[a.entries.length - 1].id));
    a.loading = true;
    this.renderAudit();
    try {
      const r = await api("api/audit?" + q);
      if (seq !== a.seq) return;
      const got = r.entries ?? [];
      a.entries = fresh ? got : [...a.entries, ...got];
      a.more = got.length === auditPage;
      a.error = "";
    } catch (e) {
      if (seq !== a.seq) return;
      a.error = e.message;
    }
    a.loading = false;
    if (this.gone) return;
    this.renderAudit();
    if (a.error) this.ctx.announce(t("audit.error", a.error), true);
    else this.ctx.announce(t("audit.shown", a.entries.length));
    if (!fresh && !a.more && document.activeElement === document.body) document.getElementById("audit-end")?.focus();
  }

  /** renderAudit draws the log; with filters, also its form (once, and on a language switch). */
  renderAudit(filters = false) {
    const a = this.audit;
    if (filters || !this.auditNode.querySelector("#audit-filters")) {
      // What is typed (sent or not) survives a language switch.
      const typed = (id, sent) => this.auditNode.querySelector("#" + id)?.value ?? sent;
      const login = el("input", { id: "audit-login", type: "search", value: typed("audit-login", a.login), spellcheck: "false", autocomplete: "off", autocapitalize: "off" });
      const user = el("input", { id: "audit-user", type: "search", value: typed("audit-user", a.user), spellcheck: "false", autocomplete: "off", autocapitalize: "off" });
      keepFocus(this.auditNode, () => set(this.auditNode,
        el("div", { class: "card-head" },
          el("h2", { id: "audit-title" }, t("audit.title")),
          el("span", { class: "muted small" }, t("audit.intro"))),
        el("form", { class: "inline-form", id: "audit-filters", role: "search", "aria-labelledby": "audit-title", on: { submit: (e) => {
          e.preventDefault();
          a.login = login.value.trim();
          a.user = user.value.trim().toLowerCase();
          this.loadAudit(true);
        } } },
          el("div", { class: "field" }, el("label", { for: "audit-login" }, t("audit.login")), login),
          el("div", { class: "field" }, el("label", { for: "audit-user" }, t("audit.user")), user),
          el("button", { type: "submit", id: "audit-filter" }, t("audit.filter")),
          el("button", { type: "button", class: "secondary", id: "audit-clear", on: { click: () => {
            login.value = user.value = "";
            a.login = a.user = "";
            this.loadAudit(true);
          } } }, t("audit.clear"))),
        el("div", { id: "audit-body" }),
      ));
    }
    const body = this.auditNode.querySelector("#audit-body");
    const filtered = a.login || a.user;
    keepFocus(body, () => set(body,
      a.error ? el("p", { class: "error", role: "alert" }, t("audit.error", a.error)) : null,
      a.entries.length
        ? el("div", { class: "table-wrap" }, el("table", { class: "grid", id: "audit-table" },
          el("thead", {}, el("tr", {},
            el("th", { scope: "col" }, t("audit.when")),
            el("th", { scope: "col" }, t("audit.user")),
            el("th", { scope: "col" }, t("audit.action")),
            el("th", { scope: "col" }, t("audit.customer")),
            el("th", { scope: "col" }, t("audit.remote")))),
          el("tbody", {}, a.entries.map((e) => el("tr", { "data-id": String(e.id) },
            el("td", { class: "nowrap" }, el("time", { datetime: e.at, title: fullDate(e.at) }, clock(e.at))),
            el("td", { class: "user" }, e.user, e.auth && e.auth !== "session" ? el("span", { class: "muted small" }, " · " + (has("audit.via." + e.auth) ? t("audit.via." + e.auth) : e.auth)) : null),
            el("td", {}, has("action." + e.action) ? t("action." + e.action) : e.action),
            el("td", { class: "login" }, e.login === "*" ? t("audit.all") : e.login || "", e.query ? el("span", { class: "muted mono" }, (e.login ? " · " : "") + e.query) : null),
            el("td", { class: "mono" }, e.remote))))))
        : !a.loading && !a.error ? el("p", { class: "muted", id: "audit-empty" }, filtered ? t("audit.emptyFiltered") : t("audit.empty")) : null,
      a.loading ? el("p", { class: "muted" }, t("admin.loading")) : null,
      a.more
        ? el("div", { class: "older-wrap" }, el("button", { type: "button", class: "secondary small", id: "audit-older", on: { click: () => this.loadAudit(false) } }, t("audit.older")))
        : a.entries.length >= auditPage && !a.loading ? el("p", { class: "muted small", id: "audit-end", tabindex: "-1" }, t("audit.end")) : null,
    ));
  }
}
