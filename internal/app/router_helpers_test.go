package app_test

import (
	"path/filepath"
	"testing"
	"time"

	"authwatch/internal/config"
	"authwatch/watcher"
	"authwatch/watcher/routeros/routerostest"
)

// routerConfig is testConfig with the fake router followed as "bras-norte",
// logging in as authwatch/pw and re-reading its table every second.
func routerConfig(t *testing.T, router *routerostest.Server) *config.Config {
	t.Helper()
	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	cfg.RouterOS = []config.RouterOS{{Name: "bras-norte", Address: router.Addr(), User: "authwatch", Password: "pw", PollInterval: config.Duration(time.Second)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// customerAt returns login's state from the daemon at base.
func customerAt(t *testing.T, base, login string) watcher.Customer {
	t.Helper()
	var c watcher.Customer
	getJSON(t, base+"/api/customers/"+login, &c)
	return c
}

// waitOnline waits until the daemon at base shows login online.
func waitOnline(t *testing.T, base, login string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c struct{ Online bool }
		getJSON(t, base+"/api/customers/"+login, &c)
		if c.Online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed up online", login)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
