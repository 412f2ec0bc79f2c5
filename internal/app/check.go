package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"authwatch/internal/config"
	"authwatch/watcher/routeros"
	"authwatch/watcher/sqlstore"
)

// Check validates the configuration at path and, with connect, tries what it
// points at: the store and each RouterOS router. It prints one line per
// check, OK or FAIL with the reason, and returns an error when any failed.
func Check(ctx context.Context, path string, connect bool, out io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(out, "FAIL config %s\n     %v\n", path, err)
		return fmt.Errorf("configuration is not valid")
	}
	fmt.Fprintf(out, "OK   config %s: %d NAS, %d RouterOS router(s), store %s\n", path, len(cfg.NAS), len(cfg.RouterOS), cfg.Store.Driver)
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
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func storeName(cfg *config.Config) string {
	if cfg.Store.Driver == "sqlite" {
		return "sqlite " + cfg.Store.Path
	}
	return cfg.Store.Driver
}
