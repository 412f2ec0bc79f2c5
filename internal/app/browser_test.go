package app_test

// The agent's page end to end, in a real headless Chromium (Debian's
// chromium package; .ci/run installs it). The issue asks for playwright-core
// or chromedriver; chromedp drives the same real browser over the DevTools
// protocol, from Go, so this test runs under plain `go test ./...` and sends
// real RADIUS packets to a real daemon between two clicks.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/browser"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// page is one browser tab under test.
type page struct {
	t   *testing.T
	ctx context.Context
}

const pageWait = 15 * time.Second

func (p page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits until the JavaScript expression holds.
func (p page) wait(what, expr string) {
	p.t.Helper()
	if err := browser.WaitJS(p.ctx, expr, pageWait); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p page) eval(expr string) string {
	p.t.Helper()
	v, err := browser.Eval[string](p.ctx, expr)
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// press types one key as a keyboard does: the page's keydown handler may
// take it (a shortcut) and stop it from becoming text. (chromedp.KeyEvent
// sends the character as a separate event that no handler can stop.)
func (p page) press(key string) {
	p.t.Helper()
	code, vk := "Key"+strings.ToUpper(key), int64(strings.ToUpper(key)[0])
	if key == "/" {
		code, vk = "Slash", 191
	}
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
		params := input.DispatchKeyEventParams{Type: typ, Key: key, Code: code, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk}
		if typ == input.DispatchKeyEventTypeKeyDown {
			params.Text, params.UnmodifiedText = key, key
		}
		if _, err := chromedp.Call(p.ctx, input.DispatchKeyEvent, params); err != nil {
			p.t.Fatal(err)
		}
	}
}

// has is a JavaScript test that the element's text contains every string.
func has(sel string, texts ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "(() => { const e = document.querySelector(%q); if (!e) return false; const s = e.innerText;", sel)
	for _, s := range texts {
		fmt.Fprintf(&b, " if (!s.includes(%q)) return false;", s)
	}
	b.WriteString(" return true; })()")
	return b.String()
}

// freeAddr picks a loopback port for the daemon, so that it can be
// restarted on the same one: the page only knows that address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// watchPageErrors fails the test on any uncaught exception in the page.
func watchPageErrors(t *testing.T, ctx context.Context) {
	events := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				desc = d.Exception.Description
			}
			t.Errorf("uncaught exception in the page (%s:%d): %s", d.URL, d.LineNumber, desc)
		}
	}()
}

// TestPageInBrowser is an agent's call: find the customer by MAC, watch the
// reboot (real Stop and Start packets, a real HTTP server standing in for
// the CPE), copy the summary, test HTTP access; then the server restarts
// while the page is open and the page shows what it missed, once; then
// English, the supervisor's firehose, and a replaced database.
func TestPageInBrowser(t *testing.T) {
	chromium := radiustest.NeedCommand(t, "chromium")

	cpe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><title>TP-Link Archer C6</title></html>")
	}))
	defer cpe.Close()
	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	cfg.HTTP.Listen = freeAddr(t)
	cfg.Probe.Ports, cfg.Probe.Allow = []int{cpe.Listener.Addr().(*net.TCPAddr).Port}, []string{"127.0.0.0/8"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, stop := start(t, cfg)
	base := "http://" + cfg.HTTP.Listen + "/"

	joao := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "s1",
		MAC: "18:FD:74:22:23:B7", IP: netip.MustParseAddr("127.0.0.1"), NASPortID: "vlan100"}
	send(t, d, joao)
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "maria", SessionID: "m1",
		MAC: "18:FD:74:00:00:02", IP: netip.MustParseAddr("127.0.0.2")})

	bctx, cancel, err := browser.New(context.Background(), browser.Options{ExecPath: chromium, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	p := page{t, bctx}
	watchPageErrors(t, bctx)
	if err := browser.Emulate(bctx, 1366, 768, "America/Sao_Paulo", "pt_BR"); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.Navigate(base))
	p.wait("home page in Portuguese", has("main", "Acompanhe a autenticação"))

	// "/" focuses the search; a MAC finds the customer.
	p.press("/")
	p.wait("/ focuses the search", `document.activeElement.id === "q"`)
	p.do(chromedp.SendKeys(chromedp.ID("q"), "18-fd-74-22-23-b7"+kb.Enter))
	p.wait("deep link", `location.hash === "#/c/joao"`)
	p.wait("Now: online with IP, MAC and NAS", `document.querySelector('#status[data-status="online"]') && `+
		has("#now", "ONLINE", "127.0.0.1", "18:FD:74:22:23:B7", "bras-centro", "vlan100"))
	p.wait("the connection light", has("#conn", "ao vivo"))

	// Watch a reboot: ticket and agent, one button ("w" goes to the form).
	p.press("w")
	p.wait("w focuses the watch form", `document.activeElement.id === "watch-ticket"`)
	p.do(
		chromedp.SendKeys(chromedp.ID("watch-ticket"), "2026-123"),
		chromedp.SendKeys(chromedp.ID("watch-agent"), "Ana"),
		chromedp.Click(chromedp.ID("watch-start")),
	)
	p.wait("watch running, waiting for the drop", `document.querySelector('#watch[data-state="running"] .step[data-step="dropped"].current')`)

	stopped := joao
	stopped.Status, stopped.TerminateCause = rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctTerminateCause_Value_LostCarrier
	send(t, d, stopped)
	p.wait("stepper: dropped, authentication next", `document.querySelector('.step[data-step="dropped"].done') && `+has(".step[data-step=dropped]", "Lost-Carrier"))
	back := joao
	back.SessionID = "s2"
	send(t, d, back)
	p.wait("verdict ok", `document.querySelector('#watch[data-verdict="ok"]')`)
	p.wait("verdict in plain words", has("#verdict", "Reinício concluído", "reinício concluído — autenticou e o equipamento responde"))
	p.wait("every step done", `[...document.querySelectorAll("#watch .step")].every(s => s.matches(".done, .skipped")) && document.querySelector('.step[data-step="reachable"].done')`)
	p.wait("HTTP step names the CPE", has(".step[data-step=reachable]", "TP-Link Archer C6"))
	p.wait("the end was signalled (sound, notification)", `document.querySelector("#watch").dataset.alerted === "ok"`)
	p.wait("timeline in plain words", has(".timeline", "Sessão encerrada: Lost-Carrier", "sem sinal do roteador", "Equipamento responde em HTTP: TP-Link Archer C6", "Sessão iniciada"))

	// The timeline expands to the raw RADIUS attributes.
	p.do(chromedp.Click(chromedp.CSS(`.ev[data-kind="session.stop"] summary`)))
	p.wait("raw attributes", has(`.ev[data-kind="session.stop"] .ev-raw`, "Acct-Terminate-Cause", "Lost-Carrier", "Acct-Session-Id"))

	// Copy summary: the server's text, in Portuguese, in the browser's time zone.
	p.do(chromedp.Click(chromedp.CSS("#watch .watch-copy")))
	p.wait("summary text", `document.querySelector("#summary")?.value.includes("Resultado: reinício concluído")`)
	summary := p.eval(`document.querySelector("#summary").value`)
	var evs struct {
		Events []watcher.Event `json:"events"`
	}
	getJSON(t, base+"api/customers/joao/events", &evs)
	var dropAt time.Time
	for _, ev := range evs.Events {
		if ev.Kind == watcher.SessionStop {
			dropAt = ev.At
		}
	}
	sp, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"protocolo 2026-123", "atendente Ana", dropAt.In(sp).Format("15:04:05") + " sessão caiu",
		"equipamento responde em HTTP (TP-Link Archer C6)"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	// A new watch remembers the agent's name.
	p.do(chromedp.Click(chromedp.CSS("#watch .watch-again")))
	p.wait("agent remembered", `document.querySelector("#watch-agent")?.value === "Ana"`)

	// Test HTTP access on demand.
	p.do(chromedp.Click(chromedp.ID("probe")))
	p.wait("probe result", has("#now .probe-result", "O equipamento responde", "TP-Link Archer C6"))

	// The server goes away with the page open, once the page shows every
	// event stored so far.
	getJSON(t, base+"api/customers/joao/events", &evs)
	shown := strconv.Itoa(len(evs.Events))
	p.wait("every event shown", `String(document.querySelectorAll(".timeline .ev").length) === "`+shown+`"`)
	stop()
	p.wait("the page says it is disconnected", `!document.querySelector("#conn-banner").hidden && document.querySelector("#conn").classList.contains("down")`)

	// Meanwhile, another instance on the same database records what the
	// page cannot see: the customer hangs up and comes back.
	other := *cfg
	other.HTTP.Listen = "127.0.0.1:0"
	d2, stop2 := start(t, &other)
	hangup := back
	hangup.Status, hangup.TerminateCause = rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctTerminateCause_Value_UserRequest
	send(t, d2, hangup)
	again := joao
	again.SessionID = "s3"
	send(t, d2, again)
	stop2()
	if got := p.eval(`String(document.querySelectorAll(".timeline .ev").length)`); got != shown {
		t.Fatalf("the page changed while disconnected: %s events, was %s", got, shown)
	}

	// Back on the same address: the page reconnects by itself and shows the
	// two events it missed, once.
	d3, stop3 := start(t, cfg)
	p.wait("reconnected", `document.querySelector("#conn").classList.contains("live") && document.querySelector("#conn-banner").hidden`)
	p.wait("says what it recovered", has("#notice", "Reconectado", "2 evento(s)"))
	p.wait("missed events shown", has(".timeline", "Sessão encerrada: User-Request"))
	p.wait("state caught up", has("#now", "s3"))
	send(t, d3, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "joao", SessionID: "s3", MAC: "18:FD:74:22:23:B7",
		IP: netip.MustParseAddr("127.0.0.1"), TerminateCause: rfc2866.AcctTerminateCause_Value_LostCarrier})
	p.wait("live again after the resume", `document.querySelector('#status[data-status="offline"]')`)
	getJSON(t, base+"api/customers/joao/events", &evs)
	var want []string
	for _, ev := range evs.Events {
		want = append(want, strconv.FormatInt(ev.Seq, 10))
	}
	p.wait("every event once, newest first", fmt.Sprintf(
		`[...document.querySelectorAll(".timeline .ev")].map(e => e.dataset.seq).reverse().join(",") === %q`, strings.Join(want, ",")))

	// English, kept across a reload.
	p.do(chromedp.Click(chromedp.ID("lang")))
	p.wait("English", has("main", "Session ended: User-Request", "Session ended: Lost-Carrier", "OFFLINE", "TIMELINE", "The equipment answers"))
	p.do(chromedp.Reload())
	p.wait("still English after a reload", `document.documentElement.lang === "en" && `+has("main", "Session ended: Lost-Carrier", "WATCH A REBOOT"))

	// The supervisor's firehose: every customer, filtered by kind and NAS.
	p.press("s")
	p.wait("firehose", `location.hash === "#/all" && `+has(".timeline", "joao", "maria", "Session started")+
		` && document.querySelectorAll(".timeline .ev-login").length >= 4`)
	p.wait("health", has("#health", "Storage", "bras-centro"))
	p.do(chromedp.Click(chromedp.CSS(`#filters input[value="start"]`)))
	p.wait("kind filter", `[...document.querySelectorAll(".timeline .ev")].filter(e => !e.hidden).every(e => e.dataset.kind !== "session.start")`)
	p.do(chromedp.SetValue(chromedp.ID("f-login"), "mar"), chromedp.Evaluate[chromedp.Void](`document.getElementById("f-login").dispatchEvent(new Event("input"))`))
	p.wait("login filter", `[...document.querySelectorAll(".timeline .ev")].filter(e => !e.hidden).length === 0`)

	// A server on a new, empty database: the page starts over instead of
	// mixing two histories.
	p.do(chromedp.Navigate(base + "#/c/joao"))
	p.wait("customer page", has("#now", "OFFLINE"))
	stop3()
	fresh := *cfg
	fresh.Store.Path = filepath.Join(t.TempDir(), "other.db")
	d4, _ := start(t, &fresh)
	p.wait("disconnected", `document.querySelector("#conn").classList.contains("live") === false || document.querySelector("#notice").innerText.includes("replaced")`)
	send(t, d4, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "n1", IP: netip.MustParseAddr("127.0.0.9")})
	p.wait("reset", has("#notice", "replaced"))
	p.wait("only the new history", `document.querySelectorAll(".timeline .ev").length <= 1 && document.querySelector('#status[data-status="online"]')`)
}
