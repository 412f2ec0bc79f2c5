package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher/frsql"
	"authwatch/watcher/routeros"
	"authwatch/watcher/sqlstore"
)

// Check validates the configuration at path and, with connect, tries what it
// points at: the store, each RouterOS router, each proxy upstream, each
// FreeRADIUS log file and SQL source. It prints one line per
// check, OK or FAIL with the reason, and returns an error when any failed.
func Check(ctx context.Context, path string, connect bool, out io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(out, "FAIL config %s\n     %v\n", path, err)
		return fmt.Errorf("configuration is not valid")
	}
	fmt.Fprintf(out, "OK   config %s: %d NAS, %d RouterOS router(s), %d proxy upstream(s), %d FreeRADIUS log(s), %d SQL source(s), store %s\n",
		path, len(cfg.NAS), len(cfg.RouterOS), len(cfg.Proxy.Upstreams), len(cfg.FreeRADIUSLog), len(cfg.SQLSources), cfg.Store.Driver)
	if !connect {
		return nil
	}
	failed := 0
	report := func(what string, err error, okDetail string) {
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAIL %s\n     %v\n", what, err)
			return
		}
		fmt.Fprintf(out, "OK   %s%s\n", what, okDetail)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := sqlstore.Open(sctx, sqlstore.Options{Driver: cfg.Store.Driver, Path: cfg.Store.Path, Synchronous: cfg.Store.Synchronous, DSN: cfg.Store.DSN.Reveal(), Logger: discardLogger()})
	if err == nil {
		var last int64
		if last, err = st.LastSeq(sctx); err == nil {
			report("store "+storeName(cfg), nil, fmt.Sprintf(": %d events so far", last))
		}
		st.Close()
	}
	if err != nil {
		report("store "+storeName(cfg), err, "")
	}
	cancel()

	for _, r := range cfg.RouterOS {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		id, ver, err := routeros.Check(rctx, r.Source())
		cancel()
		report(fmt.Sprintf("routeros %s (%s)", r.Name, r.Address), err, fmt.Sprintf(": identity %q, RouterOS %s", id, ver))
	}
	for _, u := range cfg.Proxy.Upstreams {
		for _, port := range []struct{ kind, addr string }{{"auth", u.Address}, {"acct", u.AcctAddress}} {
			if port.addr == "" {
				continue
			}
			took, err := statusServer(ctx, port.addr, u.Secret.Reveal())
			report(fmt.Sprintf("upstream %s %s (%s)", u.Name, port.kind, port.addr), err, fmt.Sprintf(": answered Status-Server in %s", took.Round(time.Microsecond)))
		}
	}
	for _, l := range cfg.FreeRADIUSLog {
		size, err := readable(l.Path)
		report(fmt.Sprintf("freeradius_log %s (%s)", l.Name, l.Path), err, fmt.Sprintf(": readable, %d bytes", size))
	}
	for _, c := range sqlSources(cfg) {
		detail, err := frsql.New(c, nil, nil, discardLogger()).Check(ctx)
		report(fmt.Sprintf("sql_source %s (%s)", c.Name, c.Driver), err, ": "+detail)
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

// readable opens a file for reading, as the log source will, and returns
// its size.
func readable(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func storeName(cfg *config.Config) string {
	if cfg.Store.Driver == "sqlite" {
		return "sqlite " + cfg.Store.Path
	}
	return cfg.Store.Driver
}

// statusServer asks a RADIUS server whether it is alive (RFC 5997), with
// the Message-Authenticator the RFC requires, and times the verified answer.
func statusServer(ctx context.Context, addr, secret string) (time.Duration, error) {
	c, err := radiustest.NewClient(addr, []byte(secret), radiustest.ClientOptions{Retry: time.Second, Tries: 3})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Exchange(ctx, radiustest.StatusServer()); err != nil {
		return 0, fmt.Errorf("no verified answer to Status-Server within 3s (server down, wrong secret, or Status-Server not enabled: FreeRADIUS needs status_server = yes): %w", err)
	}
	return time.Since(start), nil
}
