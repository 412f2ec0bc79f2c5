package webui

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"authwatch/internal/browser"
	"authwatch/webui/auth"
)

// TestLoginScreen drives login.html in a real (headless) Chromium: pt-BR by
// default, English on the switch, the refusal in words, then back to the
// page that sent the agent there, never to another site.
func TestLoginScreen(t *testing.T) {
	if _, err := os.Stat(browser.Path); err != nil && os.Getenv("CI") == "" {
		t.Skip("no Chromium at " + browser.Path)
	}
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	pw := f.addUser("ana", auth.RoleAgent)
	ctx, cancel, err := browser.New(context.Background(), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()

	open := func(path string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(f.url(path))); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := browser.Eval[string](ctx, expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	wait := func(expr string) {
		t.Helper()
		if err := browser.WaitJS(ctx, expr, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	submit := func(user, password string) {
		t.Helper()
		eval(fmt.Sprintf(`
			document.getElementById("username").value = %q;
			document.getElementById("password").value = %q;
			document.getElementById("login-form").requestSubmit(); ""`, user, password))
	}

	open("/login.html#next=" + url.QueryEscape("/#/c/alice"))
	wait(`document.querySelector("[data-t=title]").textContent === "Entrar" && document.documentElement.lang === "pt-BR"`)
	submit("ana", "wrong-password")
	wait(`!document.getElementById("login-error").hidden && document.getElementById("login-error").textContent === "Usuário ou senha incorretos."`)

	eval(`document.getElementById("lang").click(); ""`)
	wait(`document.querySelector("[data-t=title]").textContent === "Log in" && localStorage.getItem("authwatch.lang") === "en"`)
	submit("ana", "wrong-again")
	wait(`document.getElementById("login-error").textContent === "Wrong user name or password."`)

	submit("ana", pw)
	wait(`location.pathname === "/" && location.hash === "#/c/alice"`)
	if cookies := eval(`document.cookie`); cookies != "" {
		t.Errorf("scripts can read cookies %q: the session cookie must be HttpOnly", cookies)
	}

	// Already logged in: straight on, and only ever to this site.
	open("/login.html#next=" + url.QueryEscape("https://evil.example/"))
	wait(fmt.Sprintf(`location.origin === %q && location.pathname === "/"`, f.ts.URL))
}
