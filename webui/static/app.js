// authwatch page: type a login (or a MAC or IP), watch its state and events
// live over /ws, resume from the last seq after any disconnection.
// Everything that comes from the network is put in the page with textContent,
// never as HTML.

const MAX_SHOWN = 500; // events kept on screen

const messages = {
  pt: {
    "search.placeholder": "Login, MAC ou IP do cliente",
    "search.button": "Acompanhar",
    "nav.all": "Todos os eventos",
    "results.title": "Clientes encontrados",
    "welcome.title": "Acompanhe a autenticação de um cliente",
    "welcome.text": "Digite o login PPPoE (ou o MAC ou IP) do cliente e peça para ele reiniciar o roteador. A queda da sessão, a nova autenticação e a nova sessão aparecem aqui na hora.",
    "sessions.title": "Sessões abertas",
    "sessions.none": "Nenhuma sessão aberta.",
    "events.title": "Eventos (mais recentes primeiro)",
    "events.truncated": "Alguns eventos antigos foram omitidos durante a desconexão.",
    "events.none": "Nenhum evento ainda. Aguardando…",
    "col.nas": "Concentrador", "col.ip": "IP", "col.ipv6": "IPv6", "col.mac": "MAC",
    "col.port": "Porta", "col.start": "Início", "col.uptime": "Tempo",
    "all.title": "Todos os eventos",
    "status.online": "online", "status.offline": "offline", "status.unknown": "nunca visto",
    "since": "desde {0} ({1})",
    "conn.connecting": "conectando…", "conn.live": "ao vivo",
    "conn.retry": "desconectado, tentando de novo em {0} s", "conn.retryReason": "desconectado ({1}), tentando de novo em {0} s",
    "fact.lastAuth": "Última autenticação", "fact.lastStop": "Última queda", "fact.http": "CPE (HTTP)",
    "fact.lastSeen": "Visto por último", "fact.customers": "Clientes", "fact.online": "Online",
    "fact.sessions": "Sessões abertas", "fact.seq": "Último seq",
    "auth.accepted": "aceita", "auth.rejected": "rejeitada",
    "http.up": "responde", "http.down": "não responde",
    "lookup.none": "Nenhum cliente encontrado para “{0}”.",
    "lookup.error": "Falha na busca: {0}",
    "match.login": "login", "match.mac": "MAC", "match.ip": "IP",
    "ev.in": "recebido", "ev.out": "enviado", "ev.uptime": "duração",
    "kind.auth.accept": "autenticação aceita", "kind.auth.reject": "autenticação rejeitada",
    "kind.session.start": "sessão iniciada", "kind.session.update": "sessão atualizada",
    "kind.session.stop": "sessão encerrada", "kind.nas.up": "concentrador ligado",
    "kind.nas.down": "concentrador desligado", "kind.http.up": "CPE responde",
    "kind.http.down": "CPE não responde", "kind.action": "ação", "kind.log": "log",
    "lang.switch": "EN",
  },
  en: {
    "search.placeholder": "Customer login, MAC or IP",
    "search.button": "Watch",
    "nav.all": "All events",
    "results.title": "Customers found",
    "welcome.title": "Watch a customer authenticate",
    "welcome.text": "Type the customer's PPPoE login (or MAC or IP) and ask them to restart their router. The session drop, the new authentication and the new session show up here as they happen.",
    "sessions.title": "Open sessions",
    "sessions.none": "No open session.",
    "events.title": "Events (newest first)",
    "events.truncated": "Some older events were skipped while disconnected.",
    "events.none": "No events yet. Waiting…",
    "col.nas": "Concentrator", "col.ip": "IP", "col.ipv6": "IPv6", "col.mac": "MAC",
    "col.port": "Port", "col.start": "Started", "col.uptime": "Uptime",
    "all.title": "All events",
    "status.online": "online", "status.offline": "offline", "status.unknown": "never seen",
    "since": "since {0} ({1})",
    "conn.connecting": "connecting…", "conn.live": "live",
    "conn.retry": "disconnected, retrying in {0} s", "conn.retryReason": "disconnected ({1}), retrying in {0} s",
    "fact.lastAuth": "Last authentication", "fact.lastStop": "Last drop", "fact.http": "CPE (HTTP)",
    "fact.lastSeen": "Last seen", "fact.customers": "Customers", "fact.online": "Online",
    "fact.sessions": "Open sessions", "fact.seq": "Last seq",
    "auth.accepted": "accepted", "auth.rejected": "rejected",
    "http.up": "answers", "http.down": "does not answer",
    "lookup.none": "No customer found for “{0}”.",
    "lookup.error": "Lookup failed: {0}",
    "match.login": "login", "match.mac": "MAC", "match.ip": "IP",
    "ev.in": "in", "ev.out": "out", "ev.uptime": "uptime",
    "kind.auth.accept": "auth accepted", "kind.auth.reject": "auth rejected",
    "kind.session.start": "session started", "kind.session.update": "session update",
    "kind.session.stop": "session ended", "kind.nas.up": "NAS up",
    "kind.nas.down": "NAS down", "kind.http.up": "CPE answers",
    "kind.http.down": "CPE does not answer", "kind.action": "action", "kind.log": "log",
    "lang.switch": "PT",
  },
};

let lang = localStorage.getItem("authwatch.lang") === "en" ? "en" : "pt";
const locale = () => (lang === "en" ? "en" : "pt-BR");

function t(key, ...args) {
  const s = messages[lang][key] ?? messages.pt[key] ?? key;
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ""));
}

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c != null && c !== "") e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// --- formatting -------------------------------------------------------------

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString(locale()) : d.toLocaleString(locale());
}

function ago(iso) {
  const secs = Math.round((new Date(iso) - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: "auto" });
  const abs = Math.abs(secs);
  if (abs < 60) return rtf.format(secs, "second");
  if (abs < 3600) return rtf.format(Math.round(secs / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(secs / 3600), "hour");
  return rtf.format(Math.round(secs / 86400), "day");
}

function fmtDuration(secs) {
  secs = Math.max(0, Math.floor(secs));
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const p = (n) => String(n).padStart(2, "0");
  return d > 0 ? `${d}d ${p(h)}h${p(m)}` : h > 0 ? `${h}h${p(m)}m` : `${m}m${p(s)}s`;
}

function fmtBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toLocaleString(locale(), { maximumFractionDigits: 1 })} ${units[i]}`;
}

const join = (...parts) => parts.filter((p) => p != null && p !== "").join(" · ");

// --- the watched login ------------------------------------------------------

let current = null; // { login, ws, since, events, state, attempts, timer, stopped }

function watch(login) {
  stopWatch();
  const w = { login, ws: null, since: null, events: [], state: null, attempts: 0, timer: 0, stopped: false };
  current = w;
  $("welcome").hidden = true;
  $("results").hidden = true;
  $("watch").hidden = false;
  $("truncated").hidden = true;
  $("events").replaceChildren();
  $("facts").replaceChildren();
  $("status").textContent = "";
  $("since").textContent = "";
  $("title").textContent = login === "*" ? t("all.title") : login;
  $("sessions-wrap").hidden = login === "*";
  renderEmptiness(w);
  connect(w);
}

function stopWatch() {
  if (!current) return;
  current.stopped = true;
  clearTimeout(current.timer);
  if (current.ws) current.ws.close(1000);
  current = null;
}

function connect(w) {
  const u = new URL("ws", location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.hash = "";
  u.search = "";
  u.searchParams.set("login", w.login);
  if (w.since !== null) u.searchParams.set("since", String(w.since));
  setConn("connecting");
  const ws = new WebSocket(u);
  w.ws = ws;
  ws.onmessage = (m) => {
    if (w.stopped) return;
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    onMessage(w, msg);
  };
  ws.onclose = (e) => {
    if (w.stopped || w.ws !== ws) return;
    w.ws = null;
    // Back off, with jitter so a restarted server is not hit by every page at once.
    const delay = Math.min(15000, 1000 * 2 ** w.attempts) * (0.5 + Math.random() / 2);
    w.attempts++;
    setConn("retry", Math.ceil(delay / 1000), e.reason);
    w.timer = setTimeout(() => connect(w), delay);
  };
}

function onMessage(w, msg) {
  switch (msg.type) {
    case "snapshot":
      w.attempts = 0;
      setConn("live");
      if (msg.reset || w.since === null) {
        w.since = 0;
        w.events = [];
        $("events").replaceChildren();
      }
      if (msg.truncated) $("truncated").hidden = false;
      for (const ev of msg.events ?? []) addEvent(w, ev);
      w.since = Math.max(w.since, msg.seq ?? 0);
      setState(w, msg.state);
      break;
    case "event":
      addEvent(w, msg.event);
      if (msg.state) setState(w, msg.state);
      break;
    case "state":
      setState(w, msg.state);
      break;
  }
}

function addEvent(w, ev) {
  if (!ev || typeof ev.seq !== "number" || ev.seq <= w.since) return; // the server dedups; this is a belt
  w.since = ev.seq;
  w.events.push(ev);
  const list = $("events");
  list.prepend(eventItem(w, ev));
  if (w.events.length > MAX_SHOWN) {
    w.events.shift();
    list.lastElementChild?.remove();
  }
  renderEmptiness(w);
}

function renderEvents(w) {
  $("events").replaceChildren(...w.events.slice().reverse().map((ev) => eventItem(w, ev)));
  renderEmptiness(w);
}

function renderEmptiness(w) {
  $("no-events").hidden = w.events.length > 0;
}

function eventItem(w, ev) {
  const d = ev.detail ?? {};
  const kindClass = "kind kind-" + String(ev.kind).replace(/[^a-z]/g, "-");
  const who = w.login === "*" && ev.login ? el("a", { href: "#/c/" + encodeURIComponent(ev.login), class: "login" }, ev.login) : null;
  const traffic = d.input_octets || d.output_octets ? `${t("ev.in")} ${fmtBytes(d.input_octets)} / ${t("ev.out")} ${fmtBytes(d.output_octets)}` : "";
  const facts = join(
    ev.nas, ev.ip, d.ipv6_prefix, d.delegated_prefix, ev.mac, d.nas_port_id,
    d.session_time ? `${t("ev.uptime")} ${fmtDuration(d.session_time)}` : "", traffic,
    d.http_status ? `HTTP ${d.http_status}` : "", d.http_title, d.latency_ms ? `${Math.round(d.latency_ms)} ms` : "",
  );
  const reason = ev.reason && ev.reason !== d.terminate_cause ? join(ev.reason, d.terminate_cause) : ev.reason || d.terminate_cause;
  return el("li", { class: "event", "data-seq": String(ev.seq) },
    el("time", { datetime: ev.at, title: new Date(ev.at).toLocaleString(locale()) + " · seq " + ev.seq }, fmtTime(ev.at)),
    el("span", { class: kindClass }, t("kind." + ev.kind)),
    who,
    reason ? el("span", { class: "reason" }, reason) : null,
    facts ? el("span", { class: "muted" }, facts) : null,
  );
}

function setState(w, state) {
  if (!state) return;
  w.state = state;
  renderState(w);
}

function renderState(w) {
  const s = w.state;
  if (!s) return;
  const facts = $("facts");
  const fact = (label, value) => (value ? [el("dt", {}, label), el("dd", {}, value)] : []);
  if (w.login === "*") {
    facts.replaceChildren(
      ...fact(t("fact.customers"), String(s.customers ?? 0)),
      ...fact(t("fact.online"), String(s.online ?? 0)),
      ...fact(t("fact.sessions"), String(s.sessions ?? 0)),
      ...fact(t("fact.seq"), String(s.seq ?? 0)),
    );
    return;
  }
  const status = $("status");
  status.textContent = !s.known ? t("status.unknown") : s.online ? t("status.online") : t("status.offline");
  status.className = "badge " + (!s.known ? "unknown" : s.online ? "online" : "offline");
  $("since").textContent = s.since ? t("since", fmtTime(s.since), ago(s.since)) : "";

  const a = s.last_auth, st = s.last_stop, h = s.last_http;
  facts.replaceChildren(
    ...fact(t("fact.lastAuth"), a && join(a.accepted ? t("auth.accepted") : t("auth.rejected"), a.reason, fmtTime(a.at), a.nas, a.mac)),
    ...fact(t("fact.lastStop"), st && join(st.reason, fmtTime(st.at), st.nas)),
    ...fact(t("fact.http"), h && join(h.up ? t("http.up") : t("http.down"), h.title, h.reason, fmtTime(h.at))),
    ...fact(t("fact.lastSeen"), s.last_seen && `${fmtTime(s.last_seen)} (${ago(s.last_seen)})`),
  );

  const sessions = s.sessions ?? [];
  $("sessions").querySelector("tbody").replaceChildren(...sessions.map((ss) => el("tr", {},
    el("td", {}, ss.nas), el("td", {}, ss.ip ?? ""),
    el("td", {}, join(ss.ipv6_address, ss.ipv6_prefix, ss.delegated_prefix)),
    el("td", {}, ss.mac ?? ""), el("td", {}, ss.nas_port_id ?? ""),
    el("td", {}, fmtTime(ss.start)), el("td", {}, fmtDuration((Date.now() - new Date(ss.start)) / 1000)),
  )));
  $("sessions").hidden = sessions.length === 0;
  $("no-sessions").hidden = sessions.length > 0;
}

function setConn(kind, secs, reason) {
  const c = $("conn");
  c.className = "conn " + kind;
  c.textContent = kind === "retry" ? (reason ? t("conn.retryReason", secs, reason) : t("conn.retry", secs)) : t("conn." + kind);
}

// --- search -----------------------------------------------------------------

async function search(q) {
  q = q.trim();
  if (!q) return;
  notice("");
  let data;
  try {
    const r = await fetch("api/lookup?q=" + encodeURIComponent(q));
    data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
  } catch (e) {
    notice(t("lookup.error", e.message));
    return;
  }
  const results = data.results ?? [];
  const exact = results.find((x) => x.login === q);
  if (exact) go(exact.login);
  else if (results.length === 1) go(results[0].login);
  else if (results.length > 1) showResults(results);
  else if (data.query?.kind === "login") go(q); // never seen yet: watch it and wait
  else notice(t("lookup.none", q));
}

function go(login) {
  const hash = "#/c/" + encodeURIComponent(login);
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showResults(results) {
  stopWatch();
  $("welcome").hidden = true;
  $("watch").hidden = true;
  $("results").hidden = false;
  $("result-list").replaceChildren(...results.map((r) => el("li", {},
    el("a", { href: "#/c/" + encodeURIComponent(r.login) }, r.login), " ",
    el("span", { class: "badge " + (r.online ? "online" : "offline") }, r.online ? t("status.online") : t("status.offline")), " ",
    el("span", { class: "muted" }, join(t("match." + r.match), r.last_seen && fmtTime(r.last_seen))),
  )));
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// --- routing and language ---------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/c\/(.+)$/);
  if (!m) {
    stopWatch();
    $("watch").hidden = true;
    $("results").hidden = true;
    $("welcome").hidden = false;
    return;
  }
  let login;
  try { login = decodeURIComponent(m[1]); } catch { login = m[1]; }
  notice("");
  if (current && current.login === login) return;
  $("q").value = login === "*" ? "" : login;
  watch(login);
}

function applyLang() {
  document.documentElement.lang = locale();
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-placeholder]")) e.placeholder = t(e.dataset.i18nPlaceholder);
  $("lang").textContent = t("lang.switch");
  if (current) {
    $("title").textContent = current.login === "*" ? t("all.title") : current.login;
    renderState(current);
    renderEvents(current);
  }
}

$("lang").addEventListener("click", () => {
  lang = lang === "pt" ? "en" : "pt";
  localStorage.setItem("authwatch.lang", lang);
  applyLang();
});

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  search($("q").value);
});

window.addEventListener("hashchange", route);
// Keep "há 3 min" and session uptimes honest.
setInterval(() => { if (current) renderState(current); }, 15000);

applyLang();
route();
