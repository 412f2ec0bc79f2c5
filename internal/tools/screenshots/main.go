// Command screenshots takes the README's pictures of the agent's page: it
// runs `authwatch demo` in-process (or uses one already running, -url),
// opens the page in a headless Chromium at 1366×768, in Portuguese and in
// English, starts reboot watches through the page itself and waits for the
// demo customers to reboot, and saves PNG files under docs/screenshots.
//
// Run by hand, it takes about two minutes (the demo reboots its customers
// once a minute):
//
//	go run ./internal/tools/screenshots
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"authwatch/internal/app"
	"authwatch/internal/browser"
)

func main() {
	out := flag.String("out", "docs/screenshots", "directory for the PNG files")
	url := flag.String("url", "", "a running demo's URL (default: start one in-process)")
	user := flag.String("user", "admin", "account to log in with, when the server asks")
	password := flag.String("password", "", "its password (in-process: read from the demo's output)")
	chromium := flag.String("chromium", "", "Chromium binary (default "+browser.Path+")")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *url, *user, *password, *chromium); err != nil {
		log.Fatal(err)
	}
}

// demoOutput collects what the demo prints, to read its URL and password.
type demoOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (d *demoOutput) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.b.Write(p)
}

func (d *demoOutput) match(re *regexp.Regexp) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := re.FindStringSubmatch(d.b.String()); m != nil {
		return m[1]
	}
	return ""
}

var (
	urlRE      = regexp.MustCompile(`Open (http://\S+/)`)
	passwordRE = regexp.MustCompile(`password (\S+)`)
)

func run(ctx context.Context, out, base, user, password, chromium string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if base == "" {
		dir, err := os.MkdirTemp("", "authwatch-screenshots-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		var printed demoOutput
		go func() {
			done <- app.Demo(dctx, app.DemoOptions{HTTP: "127.0.0.1:0", Customers: 40, Dir: dir}, &printed, io.Discard)
		}()
		defer func() {
			cancel()
			<-done
		}()
		for base == "" {
			select {
			case err := <-done:
				return fmt.Errorf("demo: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			base = printed.match(urlRE)
		}
		if password == "" {
			password = printed.match(passwordRE)
		}
	}
	base = strings.TrimSuffix(base, "/") + "/"
	log.Printf("demo at %s", base)

	bctx, cancel, err := browser.New(ctx, browser.Options{ExecPath: chromium})
	if err != nil {
		return err
	}
	defer cancel()
	if err := login(bctx, base, user, password); err != nil {
		return err
	}

	// Four tabs: the customer whose password is wrong and the one whose
	// reboot works, each in both languages.
	type tab struct {
		ctx  context.Context
		lang string
	}
	open := func(lang, locale, hash string) (tab, error) {
		tctx, _, err := browser.Tab(bctx)
		if err != nil {
			return tab{}, err
		}
		if err := browser.Emulate(tctx, 1366, 768, "America/Sao_Paulo", locale); err != nil {
			return tab{}, err
		}
		// The language is read from localStorage when the page loads.
		if err := chromedp.Do(tctx, chromedp.Navigate(base+"static/icon.svg")); err != nil {
			return tab{}, err
		}
		if _, err := browser.Eval[any](tctx, fmt.Sprintf(`localStorage.setItem("authwatch.lang", %q); localStorage.setItem("authwatch.agent", "Ana Souza"); localStorage.setItem("authwatch.theme", "light")`, lang)); err != nil {
			return tab{}, err
		}
		if err := chromedp.Do(tctx, chromedp.Navigate(base+hash)); err != nil {
			return tab{}, err
		}
		return tab{tctx, lang}, browser.WaitJS(tctx, `document.querySelector("#status")`, 10*time.Second)
	}
	senhaPT, err := open("pt-BR", "pt_BR", "#/c/demo.senha")
	if err != nil {
		return err
	}
	senhaEN, err := open("en", "en_US", "#/c/demo.senha")
	if err != nil {
		return err
	}
	rebootPT, err := open("pt-BR", "pt_BR", "#/c/demo.reboot")
	if err != nil {
		return err
	}
	rebootEN, err := open("en", "en_US", "#/c/demo.reboot")
	if err != nil {
		return err
	}

	// Start both watches from the page, as an agent would: ticket number,
	// agent name remembered, one click.
	start := func(t tab, ticket string) error {
		return chromedp.Do(t.ctx,
			chromedp.SendKeys(chromedp.ID("watch-ticket"), ticket),
			chromedp.Click(chromedp.ID("watch-start")),
		)
	}
	if err := start(senhaPT, "2026-0815"); err != nil {
		return err
	}
	if err := start(rebootEN, "2026-0816"); err != nil {
		return err
	}
	log.Print("watches started; waiting for the demo customers to reboot (about a minute)")

	shot := func(t tab, name string) error {
		path := filepath.Join(out, name)
		log.Printf("saving %s", path)
		return browser.Screenshot(t.ctx, path)
	}
	wait := 150 * time.Second
	// Mid-watch: the wrong-password router has been rejected twice.
	for _, t := range []tab{senhaPT, senhaEN} {
		if err := browser.WaitJS(t.ctx, `document.querySelectorAll("#watch .rejects li").length >= 2`, wait); err != nil {
			return err
		}
	}
	if err := shot(senhaPT, "customer-watch-pt.png"); err != nil {
		return err
	}
	if err := shot(senhaEN, "customer-watch-en.png"); err != nil {
		return err
	}
	// The reboot that worked.
	for _, t := range []tab{rebootPT, rebootEN} {
		if err := browser.WaitJS(t.ctx, `document.querySelector("#watch[data-verdict]")`, wait); err != nil {
			return err
		}
	}
	// Show the summary for the ticket, as after "copy summary".
	for _, t := range []tab{rebootPT, rebootEN} {
		if err := chromedp.Do(t.ctx, chromedp.Click(chromedp.CSS("#watch .watch-copy"))); err != nil {
			return err
		}
		if err := browser.WaitJS(t.ctx, `document.querySelector("#summary")?.value`, 10*time.Second); err != nil {
			return err
		}
		if _, err := browser.Eval[any](t.ctx, `document.activeElement.blur(); window.scrollTo(0, 0)`); err != nil {
			return err
		}
	}
	if err := shot(rebootPT, "verdict-ok-pt.png"); err != nil {
		return err
	}
	if err := shot(rebootEN, "verdict-ok-en.png"); err != nil {
		return err
	}
	// The supervisor's view, once the firehose has something to show.
	for _, t := range []tab{senhaPT, senhaEN} {
		if err := chromedp.Do(t.ctx, chromedp.Navigate(base+"#/all")); err != nil {
			return err
		}
		if err := browser.WaitJS(t.ctx, `document.querySelectorAll(".timeline .ev").length > 10 && document.querySelector("#health tr")`, 20*time.Second); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	if err := shot(senhaPT, "supervisor-pt.png"); err != nil {
		return err
	}
	if err := shot(senhaEN, "supervisor-en.png"); err != nil {
		return err
	}
	// The admin's page: accounts and the audit log of the lookups above.
	if err := chromedp.Do(senhaPT.ctx, chromedp.Navigate(base+"#/admin")); err != nil {
		return err
	}
	if err := browser.WaitJS(senhaPT.ctx, `document.querySelector("#users-table tbody tr") && document.querySelector("#audit tbody tr")`, 20*time.Second); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if err := shot(senhaPT, "admin-pt.png"); err != nil {
		return err
	}
	// Dark mode, the same customer page.
	if _, err := browser.Eval[any](rebootPT.ctx, `document.getElementById("theme").click()`); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	return shot(rebootPT, "verdict-ok-dark-pt.png")
}

// login signs in through the login page when the server has accounts.
func login(ctx context.Context, base, user, password string) error {
	resp, err := http.Get(base + "api/me")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return nil // desk mode: no accounts
	}
	if password == "" {
		return errors.New("the server wants a login: give -password")
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"login.html"),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return browser.WaitJS(ctx, `!location.pathname.endsWith("login.html")`, 10*time.Second)
}
