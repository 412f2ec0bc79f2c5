package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"authwatch/internal/config"
	"authwatch/internal/demo"
)

// DemoOptions tune `authwatch demo`.
type DemoOptions struct {
	HTTP      string // page address; a free port is used when it is taken
	Customers int
	Dir       string // for the SQLite file; "" means a temporary directory
}

// Demo runs authwatch on loopback with a simulated NAS sending real RADIUS
// accounting, prints the URL, and stops cleanly when ctx ends (Ctrl-C).
func Demo(ctx context.Context, o DemoOptions, stdout, stderr io.Writer) error {
	if o.Customers < 2 {
		o.Customers = 2
	}
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "authwatch-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	secret := randomSecret()
	cfg := config.Defaults()
	cfg.HTTP.Listen = o.HTTP
	cfg.Store.Path = filepath.Join(dir, "authwatch.db")
	cfg.Store.Retention = config.Duration(24 * time.Hour)
	cfg.RADIUS.Listen = "127.0.0.1:0"
	cfg.NAS = []config.NAS{{Name: "bras-centro", Address: "127.0.0.1", Secret: config.Secret(secret)}}
	// A second concentrator, a MikroTik followed over its API, which also
	// shows failed logins.
	centro := demo.Customers(o.Customers, 7, demo.RebootLogin, 0)
	norte := demo.Customers(o.Customers/2+1, 11, demo.PasswordLogin, 1)
	router, err := demo.NewRouter("bras-norte", "authwatch", secret, norte)
	if err != nil {
		return err
	}
	defer router.Server.Close()
	cfg.RouterOS = []config.RouterOS{{Name: "bras-norte", Address: router.Addr(), User: "authwatch", Password: config.Secret(secret),
		PollInterval: config.Duration(5 * time.Second)}}
	// The demo's customers live on loopback, where their routers' pages
	// answer the probe.
	cfg.Probe.Allow = []string{"127.0.0.0/8"}
	if cpes, err := demo.StartCPEs(append(append([]*demo.Customer(nil), centro...), norte...)); err != nil {
		fmt.Fprintf(stderr, "the customers' router pages are not simulated (%v); probes will find nothing\n", err)
	} else {
		defer cpes.Close()
		cfg.Probe.Ports = []int{cpes.Port}
	}
	cfg.Log.Level = "warn"
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	log := NewLogger(cfg.Log, stderr)

	d, err := New(ctx, &cfg, log)
	if errors.Is(err, syscall.EADDRINUSE) {
		fmt.Fprintf(stderr, "%s is taken; using a free port instead\n", cfg.HTTP.Listen)
		cfg.HTTP.Listen = "127.0.0.1:0"
		d, err = New(ctx, &cfg, log)
	}
	if err != nil {
		return err
	}
	// Logging in is part of the demo too: an admin whose password is
	// printed once, below.
	adminPW, err := demoAdmin(ctx, d)
	if err != nil {
		d.close()
		return err
	}
	token, err := demoToken(ctx, d)
	if err != nil {
		d.close()
		return err
	}
	url := "http://" + d.HTTPAddr() + "/"
	fmt.Fprintf(stdout, `authwatch demo is running.

  Open %s
  Log in as %s with the password %s (shown only now)

  Watch a customer who reboots every minute: %s#/c/%s
  One whose router is rejected (wrong password) after each reboot: %s#/c/%s
  Or in a terminal: go run ./cmd/authwatch tail -server %s -token %s %s

  RADIUS accounting on %s (NAS bras-centro, secret %s)
  RouterOS API (simulated) for bras-norte on %s
  Events are kept in %s
  Ctrl-C stops everything.
`, url, demoAdminName, adminPW, url, demo.RebootLogin, url, demo.PasswordLogin, strings.TrimSuffix(url, "/"), token, demo.RebootLogin,
		d.RADIUSAddr(), secret, router.Addr(), cfg.Store.Path)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(gctx) })
	nas := &demo.NAS{
		Name: "bras-centro", Server: d.RADIUSAddr(), Secret: []byte(secret),
		NASIP: netip.MustParseAddr("127.0.0.1"), Customers: centro, Log: log,
	}
	g.Go(func() error { return nas.Run(gctx) })
	g.Go(func() error { return router.Run(gctx) })
	err = g.Wait()
	fmt.Fprintln(stdout, "authwatch demo stopped.")
	return err
}

func randomSecret() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
