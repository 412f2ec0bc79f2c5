// Package browser starts a headless Chromium for the page's end-to-end tests
// and its screenshots, driven over the DevTools protocol by chromedp.
//
// chromedp rather than playwright-core or chromedriver: it drives the same
// real Chromium (Debian's chromium package) with no Node.js and no driver
// binary, from Go, so a test can send real RADIUS packets to the daemon
// between two clicks and run under plain `go test ./...`.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// Options tune the browser.
type Options struct {
	ExecPath string // default Path, or "chromium" on PATH
	Width    int    // window size; default 1366×768, the agents' laptops
	Height   int
	// Logf, when set, gets the browser's DevTools errors (not the page's console).
	Logf func(format string, args ...any)
}

// New starts Chromium with a fresh profile in a temporary directory and
// returns a context for chromedp actions on its first tab. cancel stops the
// browser and removes the profile.
func New(parent context.Context, o Options) (ctx context.Context, cancel context.CancelFunc, err error) {
	if o.ExecPath == "" {
		o.ExecPath = Path
		if _, err := os.Stat(Path); err != nil {
			if p, err := exec.LookPath("chromium"); err == nil {
				o.ExecPath = p
			}
		}
	}
	if o.Width == 0 || o.Height == 0 {
		o.Width, o.Height = 1366, 768
	}
	dir, err := os.MkdirTemp("", "authwatch-chromium-")
	if err != nil {
		return nil, nil, fmt.Errorf("browser: profile dir: %w", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(o.ExecPath),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium calls home (updates, sync, field trials,
		// QUIC probes) and floods a closed network with attempts.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("mute-audio", true),
	}
	actx, acancel := chromedp.NewExecAllocator(parent, opts...)
	var copts []chromedp.ContextOption
	if o.Logf != nil {
		copts = append(copts, chromedp.WithErrorf(o.Logf))
	}
	ctx, ccancel := chromedp.NewContext(actx, copts...)
	// Start the browser now, so that a missing or broken Chromium is an
	// error here rather than in the first action.
	if err := chromedp.Do(ctx); err != nil {
		ccancel()
		acancel()
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("browser: start %s: %w", o.ExecPath, err)
	}
	return ctx, func() {
		ccancel()
		acancel()
		os.RemoveAll(dir)
	}, nil
}
