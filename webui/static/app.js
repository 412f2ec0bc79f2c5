// authwatch's page: the entry module. It owns the header (search, language,
// theme, the connection light), the routes and the keyboard; each view
// (home, customer, supervisor, admin) builds its own part of <main>.
//
// Routes live in the hash, so a link to a customer can be pasted into a
// ticket or a chat: #/c/<login>, #/all, #/find/<query>, #/admin, #/. When the server
// has accounts, api.js announces a 401 as "authwatch:unauthenticated" and
// the agent goes to login.html, and back to the same route after.

import { $ } from "./dom.js";
import { t, lang, setLang, onLang, applyStatic } from "./i18n.js";
import { clock } from "./fmt.js";
import { api } from "./api.js";
import { CustomerView } from "./customer.js";
import { SupervisorView } from "./supervisor.js";
import { AdminView } from "./admin.js";
import { HomeView, lookup, destination, remember, fillDatalist } from "./search.js";

const main = $("#main");
const q = $("#q");
let view = null;
let viewKey = "";

// --- announcements, notices and the connection light -------------------------

function announce(text, assertive) {
  const region = $(assertive ? "#sr-assertive" : "#sr-polite");
  region.textContent = "";
  // A fresh node each time, so repeating the same text is announced again.
  setTimeout(() => { region.textContent = text; }, 50);
}

let noticeTimer = 0;
function notice(text, tone = "quiet") {
  clearTimeout(noticeTimer);
  const n = $("#notice");
  n.className = "banner tone-" + tone;
  $("#notice-text").textContent = text;
  n.hidden = !text;
  if (text && (tone === "ok" || tone === "quiet")) noticeTimer = setTimeout(() => { n.hidden = true; }, 10000);
}
$("#notice-close").addEventListener("click", () => notice(""));

let conn = { state: "connecting" };
let connStream = null;
function setConn(status, stream) {
  if (stream !== view?.stream) return; // a view being left
  // A websocket refused for want of a login looks like any failure from
  // here: ask the API once per outage, which answers 401 if that is it.
  if (status.state === "down" && conn.state !== "down") api("api/me").catch(() => {});
  conn = status;
  connStream = stream;
  drawConn();
}

function drawConn() {
  const c = $("#conn");
  c.className = "conn " + conn.state;
  const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000)) : 0;
  c.textContent = conn.state === "down" ? t("conn.down") + " · " + t("conn.retry", secs) : t("conn." + conn.state);
  const banner = $("#conn-banner");
  const down = conn.state === "down" || (conn.state === "connecting" && conn.downSince);
  banner.hidden = !down;
  if (down) {
    $("#conn-banner-text").textContent = t("conn.banner", clock(conn.downSince)) + (conn.state === "down" ? " " + t("conn.bannerRetry", secs) : "");
  }
  document.body.classList.toggle("offline", !!down);
}
setInterval(() => { if (conn.state === "down") drawConn(); }, 1000);
$("#conn-now").addEventListener("click", () => connStream?.reconnectNow());

// Who is logged in (GET /api/me), asked once at start and again only when
// an admin changed their own account: the "Administração" link is for
// admins of a server with accounts, not for agents nor in desk mode.
let mePromise = null;
function me() {
  mePromise ??= api("api/me").catch((e) => {
    mePromise = null;
    throw e;
  });
  return mePromise;
}
async function reloadMe() {
  mePromise = null;
  let admin = false;
  try {
    const m = await me();
    admin = m.role === "admin" && m.auth !== "desk";
  } catch { /* a 401 is on its way to the login screen; anything else: no link */ }
  $("#nav-admin").hidden = !admin;
}

const ctx = { announce, notice, setConn, me, reloadMe };

// With accounts (issue "Agent accounts"), a 401 anywhere sends the agent to
// the login screen, which comes back here afterwards.
window.addEventListener("authwatch:unauthenticated", () => {
  location.replace("login.html#next=" + encodeURIComponent(location.pathname + location.search + location.hash));
});

// --- routes -----------------------------------------------------------------

function parseRoute() {
  const h = location.hash;
  let m;
  const dec = (s) => { try { return decodeURIComponent(s); } catch { return s; } };
  if ((m = h.match(/^#\/c\/(.+)$/))) {
    const login = dec(m[1]);
    return login === "*" ? { name: "all" } : { name: "customer", login };
  }
  if (h === "#/all") return { name: "all" };
  if (h === "#/admin") return { name: "admin" };
  if ((m = h.match(/^#\/find\/(.+)$/))) return { name: "home", query: dec(m[1]) };
  return { name: "home" };
}

function route() {
  const r = parseRoute();
  const key = JSON.stringify(r);
  if (key === viewKey) return;
  if (r.name === "all" && location.hash !== "#/all") {
    location.replace("#/all");
    return;
  }
  view?.unmount();
  notice("");
  conn = { state: "connecting" };
  viewKey = key;
  switch (r.name) {
    case "customer":
      view = new CustomerView(r.login, ctx);
      remember(r.login);
      q.value = r.login;
      document.title = r.login + " — authwatch";
      break;
    case "all":
      view = new SupervisorView(ctx);
      document.title = t("sup.title") + " — authwatch";
      break;
    case "admin":
      view = new AdminView(ctx);
      document.title = t("admin.title") + " — authwatch";
      break;
    default:
      view = new HomeView(ctx, r.query ?? null);
      document.title = "authwatch";
      if (r.query) q.value = r.query;
  }
  $("#nav-all").setAttribute("aria-current", r.name === "all" ? "page" : "false");
  $("#nav-admin").setAttribute("aria-current", r.name === "admin" ? "page" : "false");
  main.replaceChildren(view.node);
  drawConn();
  $("#conn").hidden = r.name === "home" || r.name === "admin"; // no live stream there
  view.mount();
  // Move focus to the new page's title (screen readers read it), unless
  // the agent is typing in the search box.
  if (document.activeElement !== q) $("#view-title", main)?.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

// --- search -----------------------------------------------------------------

$("#search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = q.value.trim();
  if (!text) return;
  let to;
  try {
    to = destination(text, await lookup(text));
  } catch {
    to = "#/find/" + encodeURIComponent(text);
  }
  q.blur();
  if (location.hash === to) {
    viewKey = "";
    route();
  } else {
    location.hash = to;
  }
});

// --- language and theme -----------------------------------------------------

$("#lang").addEventListener("click", toggleLang);
function toggleLang() {
  setLang(lang === "en" ? "pt-BR" : "en");
}
onLang(() => {
  $("#lang").textContent = t("lang.button");
  drawConn();
  view?.relang();
  if (parseRoute().name === "all") document.title = t("sup.title") + " — authwatch";
  if (parseRoute().name === "admin") document.title = t("admin.title") + " — authwatch";
});

const themeKey = "authwatch.theme";
const systemDark = matchMedia("(prefers-color-scheme: dark)");
function isDark() {
  const v = document.documentElement.dataset.theme;
  return v ? v === "dark" : systemDark.matches;
}
function toggleTheme() {
  const next = isDark() ? "light" : "dark";
  localStorage.setItem(themeKey, next);
  document.documentElement.dataset.theme = next;
  $("#theme").setAttribute("aria-pressed", String(next === "dark"));
}
$("#theme").addEventListener("click", toggleTheme);
$("#theme").setAttribute("aria-pressed", String(isDark()));

// --- keyboard ---------------------------------------------------------------

const keys = $("#keys");
$("#help").addEventListener("click", () => keys.showModal());
$("#keys-close").addEventListener("click", () => keys.close());

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
  const target = e.target;
  const typing = target instanceof HTMLElement && (target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName) ||
    (target.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset|range|color)$/.test(target.type)));
  if (e.key === "Escape") {
    if (target === q) {
      q.blur();
      $("#view-title", main)?.focus({ preventScroll: true });
    }
    return;
  }
  if (typing || keys.open) return;
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  let done = true;
  switch (k) {
    case "/":
      q.focus();
      q.select();
      break;
    case "?":
      keys.showModal();
      break;
    case "s":
      location.hash = "#/all";
      break;
    case "l":
      toggleLang();
      break;
    case "d":
      toggleTheme();
      break;
    default:
      done = view?.key(k) ?? false;
  }
  if (done) e.preventDefault();
});

// --- start --------------------------------------------------------------------

applyStatic();
$("#lang").textContent = t("lang.button");
fillDatalist();
reloadMe();
route();
