package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authwatch/internal/app"
	"authwatch/internal/config"
	"authwatch/internal/load"
)

// daemonConfig is a minimal authwatch on loopback ports, accepting
// accounting from all of 127.0.0.0/8.
func daemonConfig(t testing.TB, db string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`
[http]
listen = "127.0.0.1:0"
auth = false
[store]
path = %q
checkpoint_interval = "1h"
[radius]
listen = "127.0.0.1:0"
[probe]
enabled = false
[[nas]]
name = "load"
address = "127.0.0.0/8"
secret = %q
`, db, testSecret)
	c, err := config.Parse(text)
	if err != nil && strings.Contains(err.Error(), "http.auth") {
		// A build without web logins does not know the key; the page is
		// open on loopback there anyway.
		c, err = config.Parse(strings.Replace(text, "auth = false\n", "", 1))
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startDaemon(t testing.TB) *app.Daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := app.New(ctx, daemonConfig(t, filepath.Join(t.TempDir(), "authwatch.db")), quiet)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d
}

// runCLI runs the tool as `authwatch load ARGS` does.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	fs := flag.NewFlagSet("authwatch load", flag.ContinueOnError)
	f := load.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = load.Main(t.Context(), cfg, f.JSON, &out, &errOut)
	return out.String(), err
}

// TestSmokeAgainstDaemon is CI's short run of the load tool: the whole
// daemon in-process, accounting in, events out on websockets. It checks
// that everything adds up, not how fast it is.
func TestSmokeAgainstDaemon(t *testing.T) {
	d := startDaemon(t)
	out, err := runCLI(t, "-server", d.RADIUSAddr(), "-secret", string(testSecret),
		"-nas", "2", "-customers", "40", "-rate", "300", "-duration", "1s",
		"-ws", "http://"+d.HTTPAddr(), "-ws-logins", "10", "-ws-firehose", "1", "-ws-grace", "5s",
		"-json")
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, out)
	}
	if rep.Sent < 100 || rep.Acked != rep.Sent || rep.Lost != 0 || rep.Mode != "open" {
		t.Errorf("sent %d, acked %d, lost %d, mode %s: want everything acked in open loop", rep.Sent, rep.Acked, rep.Lost, rep.Mode)
	}
	if rep.AckLatency.Count != rep.Acked || rep.AckLatency.P50MS <= 0 || rep.AckLatency.MaxMS < rep.AckLatency.P99MS {
		t.Errorf("ack latency %+v", rep.AckLatency)
	}
	ws := rep.WS
	if ws == nil {
		t.Fatal("no websocket report")
	}
	// Every request reaches the firehose, and a quarter of them (10 of 40
	// customers) their customer's own subscriber too.
	if ws.Expected < rep.Sent || ws.Received != ws.Expected || ws.Missing != 0 || ws.Unexpected != 0 || ws.Disconnected != 0 {
		t.Errorf("websocket %+v: want every expected event received", ws)
	}
	if ws.Latency.Count != ws.Received || ws.Latency.P50MS <= 0 {
		t.Errorf("event-to-websocket latency %+v", ws.Latency)
	}

	// Closed loop, from distinct 127.0.0.x source addresses, as text.
	out, err = runCLI(t, "-server", d.RADIUSAddr(), "-secret", string(testSecret),
		"-nas", "3", "-bind", "127.0.0.2,127.0.0.3,127.0.0.4", "-customers", "30", "-concurrency", "8", "-requests", "200")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"closed loop, 8 in flight, 200 requests;", "retransmitted", "p99", " 200 "} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
}
