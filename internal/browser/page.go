package browser

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Tab opens another tab of the browser of ctx; cancel closes it.
func Tab(ctx context.Context) (context.Context, context.CancelFunc, error) {
	tab, cancel := chromedp.NewContext(ctx)
	if err := chromedp.Do(tab); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("browser: new tab: %w", err)
	}
	return tab, cancel, nil
}

// Emulate sets the tab's viewport, time zone (IANA, e.g.
// "America/Sao_Paulo") and locale (ICU, e.g. "pt_BR"); empty strings leave
// the browser's own.
func Emulate(ctx context.Context, width, height int64, tz, locale string) error {
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		return fmt.Errorf("browser: viewport: %w", err)
	}
	if tz != "" {
		if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: tz}); err != nil {
			return fmt.Errorf("browser: time zone %s: %w", tz, err)
		}
	}
	if locale != "" {
		if _, err := chromedp.Call(ctx, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: locale}); err != nil {
			return fmt.Errorf("browser: locale %s: %w", locale, err)
		}
	}
	return nil
}

// Eval runs a JavaScript expression in the page and returns its value.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitJS waits until the JavaScript expression is true in the page. On
// timeout the error carries what the page showed, to see why.
func WaitJS(ctx context.Context, expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := Eval[bool](ctx, "!!("+expr+")")
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			shown, _ := Eval[string](ctx, `document.body ? document.body.innerText.slice(0, 3000) : ""`)
			return fmt.Errorf("waited %s for %s (last error %v); the page shows:\n%s", timeout, expr, lastErr, shown)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot saves what the tab shows (the viewport) as a PNG file.
func Screenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("browser: screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}
