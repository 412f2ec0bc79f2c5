// The login screen: posts the user name and password to /api/login, which
// sets the session cookie, then goes back to the page that sent us here
// (login.html#next=/%23/c/joao) or to the start page. pt-BR by default,
// English on the switch; the choice is shared with the main page.

const KEY = "authwatch.lang"; // as in i18n.js

const messages = {
  "pt-BR": {
    doctitle: "authwatch — entrar",
    title: "Entrar",
    intro: "Os dados de sessão dos clientes (IPs, MACs, histórico) são dados pessoais: cada acesso fica registrado com o seu usuário.",
    username: "Usuário",
    password: "Senha",
    submit: "Entrar",
    busy: "Entrando…",
    bad: "Usuário ou senha incorretos.",
    disabled: "Esta conta está desativada. Fale com um administrador.",
    limitUser: "Muitas tentativas de login erradas para este usuário. Tente novamente em {0} min.",
    limitAddress: "Muitas tentativas de login erradas a partir deste endereço. Tente novamente em {0} min.",
    network: "Sem resposta do servidor. Verifique a conexão e tente de novo.",
    other: "Não foi possível entrar: {0}",
    switchTo: "EN",
  },
  en: {
    doctitle: "authwatch — log in",
    title: "Log in",
    intro: "Customers' session data (IPs, MACs, history) is personal data: every access is recorded under your user name.",
    username: "User name",
    password: "Password",
    submit: "Log in",
    busy: "Logging in…",
    bad: "Wrong user name or password.",
    disabled: "This account is disabled. Ask an admin.",
    limitUser: "Too many failed logins for this user. Try again in {0} min.",
    limitAddress: "Too many failed logins from this address. Try again in {0} min.",
    network: "No answer from the server. Check the connection and try again.",
    other: "Could not log in: {0}",
    switchTo: "PT",
  },
};

let lang = localStorage.getItem(KEY) === "en" ? "en" : "pt-BR";

function t(key, ...args) {
  const s = messages[lang][key] ?? messages["pt-BR"][key] ?? key;
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ""));
}

function applyLang() {
  document.documentElement.lang = lang;
  document.title = t("doctitle");
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  document.getElementById("lang").textContent = t("switchTo");
}

// next is where to go after logging in: a path on this site only, never
// another origin (login.html#next=https://evil.example must not redirect).
function next() {
  const m = /(?:^#|&)next=([^&]*)/.exec(location.hash);
  let target = "/";
  if (m) {
    try {
      target = decodeURIComponent(m[1]);
    } catch {
      target = "/";
    }
  }
  if (!target.startsWith("/") || target.startsWith("//") || target.includes("\\")) target = "/";
  const u = new URL(target, location.origin);
  return u.origin === location.origin ? u.pathname + u.search + u.hash : "/";
}

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const submit = document.getElementById("submit");

function showError(msg) {
  error.textContent = msg;
  error.hidden = false;
}

async function login(ev) {
  ev.preventDefault();
  error.hidden = true;
  submit.disabled = true;
  submit.textContent = t("busy");
  try {
    const r = await fetch("api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
    });
    if (r.ok) {
      location.replace(next());
      return;
    }
    const body = await r.json().catch(() => ({}));
    form.password.value = "";
    switch (r.status) {
      case 400:
        if (/desk mode/.test(body.error ?? "")) {
          location.replace(next()); // no accounts here: nothing to log in to
          return;
        }
        showError(t("other", body.error ?? r.statusText));
        break;
      case 401:
        showError(t("bad"));
        break;
      case 403:
        showError(/disabled/.test(body.error ?? "") ? t("disabled") : t("other", body.error ?? r.statusText));
        break;
      case 429: {
        const secs = Number(r.headers.get("Retry-After")) || 60;
        const minutes = Math.max(1, Math.ceil(secs / 60));
        showError(t(/address/.test(body.error ?? "") ? "limitAddress" : "limitUser", minutes));
        break;
      }
      default:
        showError(t("other", body.error ?? r.statusText));
    }
  } catch {
    showError(t("network"));
  } finally {
    submit.disabled = false;
    submit.textContent = t("submit");
  }
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "en" ? "pt-BR" : "en";
  localStorage.setItem(KEY, lang);
  applyLang();
});
form.addEventListener("submit", login);
applyLang();

// Already logged in (or no login needed: desk mode, the SSO proxy)? Go on.
fetch("api/me", { credentials: "same-origin" })
  .then((r) => {
    if (r.ok) location.replace(next());
  })
  .catch(() => {});
