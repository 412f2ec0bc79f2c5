package app_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/app"
	"authwatch/internal/browser"
	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// TestEndSessionInBrowser: the "End session" button in a real browser. An
// agent sees it disabled with the reason; an admin's watch sees "Multiple
// logins" while the old session is still listed, is offered the button,
// confirms in a dialog that names the login, NAS and IP (cancel sends
// nothing), and sees the concentrator's answer and the action in the
// timeline.
func TestEndSessionInBrowser(t *testing.T) {
	chromium := radiustest.NeedCommand(t, "chromium")
	nas := startDynAuthNAS(t, "coa-secret", func(req *radius.Packet) *radius.Packet { return req.Response(radius.CodeDisconnectACK) })

	dir := t.TempDir()
	path := filepath.Join(dir, "authwatch.toml")
	text := fmt.Sprintf(`[http]
listen = %q
[store]
path = %q
[radius]
listen = "127.0.0.1:0"
[[nas]]
name = "bras-sul"
address = "127.0.0.1"
secret = %q
coa_port = %d
coa_secret = "coa-secret"
`, freeAddr(t), filepath.Join(dir, "authwatch.db"), secret, nas.port())
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ role, name, pw string }{{"admin", "root", "root-password-1"}, {"agent", "ana", "ana-password-1"}} {
		if out, err := runUser(t, "add", app.UserOptions{Config: path, Role: u.role, Name: u.name}, u.pw+"\n"); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := startLogged(t, cfg)
	base := "http://" + d.HTTPAddr() + "/"
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "s1",
		MAC: "18:FD:74:22:23:B7", IP: netip.MustParseAddr("100.64.0.5"), NASIP: netip.MustParseAddr("127.0.0.1")})

	bctx, cancel, err := browser.New(context.Background(), browser.Options{ExecPath: chromium, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	p := page{t, bctx}
	watchPageErrors(t, bctx)
	if err := browser.Emulate(bctx, 1366, 900, "America/Sao_Paulo", "pt_BR"); err != nil {
		t.Fatal(err)
	}
	login := func(user, pw string) {
		t.Helper()
		p.do(chromedp.Navigate(base + "login.html"))
		// A synchronous request: the cookie is set when it returns.
		p.wait("logged in as "+user, fmt.Sprintf(`(() => { const x = new XMLHttpRequest(); x.open("POST", "api/login", false);
			x.setRequestHeader("Content-Type", "application/json"); x.send(JSON.stringify({username: %q, password: %q})); return x.status === 200; })()`, user, pw))
		p.do(chromedp.Navigate(base + "#/c/joao"))
		p.wait("customer page", has("#now", "ONLINE", "100.64.0.5", "bras-sul"))
	}

	// The agent: the button is there, disabled, with the reason.
	login("ana", "ana-password-1")
	p.wait("disabled for the agent", `document.querySelector("#end-session")?.disabled === true && `+has("#now", "Só administradores encerram sessões"))

	// The admin watches the reboot; the router is refused with "Multiple
	// logins" while the old session is still listed.
	login("root", "root-password-1")
	p.wait("enabled for the admin", `document.querySelector("#end-session")?.disabled === false`)
	p.do(
		chromedp.SendKeys(chromedp.ID("watch-ticket"), "2026-77"),
		chromedp.Click(chromedp.ID("watch-start")),
	)
	p.wait("watch running", `document.querySelector('#watch[data-state="running"]')`)
	if _, err := d.Recorder().Commit(context.Background(), watcher.Event{At: time.Now(), Login: "joao", Kind: watcher.AuthReject,
		Source: "proxy", NAS: "bras-sul", MAC: "18:FD:74:22:23:B7", Reason: "Multiple logins (max 1)"}); err != nil {
		t.Fatal(err)
	}
	p.wait("the watch offers to end the stale session", has("#end-offer", "A sessão antiga ainda está aberta no concentrador bras-sul", "100.64.0.5"))

	// Cancel sends nothing.
	p.do(chromedp.Click(chromedp.ID("end-offer-button")))
	p.wait("confirmation names login, NAS, IP and uptime", `document.querySelector("#end-confirm").open && `+
		has("#end-confirm-text", "joao", "bras-sul", "100.64.0.5", "conectada há"))
	p.do(chromedp.Click(chromedp.ID("end-cancel")))
	p.wait("dialog closed", `!document.querySelector("#end-confirm").open`)
	if reqs, _ := nas.received(); len(reqs) != 0 {
		t.Fatal("cancel sent a Disconnect-Request")
	}

	// Confirm: the NAS is asked, and says yes.
	p.do(chromedp.Click(chromedp.ID("end-offer-button")))
	p.wait("dialog open again", `document.querySelector("#end-confirm").open`)
	p.do(chromedp.Click(chromedp.ID("end-ok")))
	p.wait("result", has(".end-result", "Sessão encerrada pelo concentrador (via radius)"))
	if reqs, _ := nas.received(); len(reqs) != 1 || string(reqs[0].Get(1)) != "joao" {
		t.Fatalf("NAS received %d requests", len(reqs))
	}
	p.wait("action in the timeline", `document.querySelector('.timeline .ev[data-kind="action"]') && `+
		has(`.timeline .ev[data-kind="action"]`, "session ended by root via radius: done"))
	p.do(chromedp.Click(chromedp.ID("lang")))
	p.wait("in English", has(".end-result", "Session ended by the concentrator (via radius)")+" && "+has("#end-offer", "The old session is still open on concentrator bras-sul"))

	// The accounting Stop that follows closes the session; the offer goes.
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "joao", SessionID: "s1",
		NASIP: netip.MustParseAddr("127.0.0.1"), TerminateCause: rfc2866.AcctTerminateCause_Value_AdminReset})
	p.wait("offline, no offer", `document.querySelector('#status[data-status="offline"]') && !document.querySelector("#end-offer") && !document.querySelector("#end-session")`)

	if strings.Contains(p.eval(`document.body.innerText`), "end.") {
		t.Error("the page shows a message key")
	}
}
