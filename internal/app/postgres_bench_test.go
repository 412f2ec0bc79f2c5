package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"authwatch/internal/app"
	"authwatch/internal/config"
	loadgen "authwatch/internal/load"
	"authwatch/watcher/sqlstore/pgtest"
)

// benchConfig is a daemon on loopback ports with the given [store] lines and
// no CPE probes.
func benchConfig(tb testing.TB, store string) *config.Config {
	tb.Helper()
	c, err := config.Parse(fmt.Sprintf(`
[http]
listen = "127.0.0.1:0"
auth = false
[store]
%s
checkpoint_interval = "1h"
[radius]
listen = "127.0.0.1:0"
[probe]
enabled = false
[[nas]]
name = "load"
address = "127.0.0.0/8"
secret = %q
`, store, secret))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func runDaemon(tb testing.TB, cfg *config.Config) *app.Daemon {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			tb.Error("daemon did not stop")
		}
	})
	return d
}

// BenchmarkDaemonStore is internal/load's BenchmarkDaemon (the whole daemon
// in-process, `authwatch load` closed loop with 64 requests in flight, each
// acked only after its commit) once per store: SQLite (synchronous=FULL),
// PostgreSQL (fsync on, synchronous_commit on, on a Unix socket), and two
// instances on one PostgreSQL database, the load split between them:
//
//	go test -run '^$' -bench DaemonStore -benchtime 100000x ./internal/app/
func BenchmarkDaemonStore(b *testing.B) {
	stores := []struct {
		name      string
		instances int
		store     func(b *testing.B) string
	}{
		{"sqlite", 1, func(b *testing.B) string {
			return fmt.Sprintf("path = %q", filepath.Join(b.TempDir(), "authwatch.db"))
		}},
		{"postgres", 1, func(b *testing.B) string { return fmt.Sprintf("driver = \"postgres\"\ndsn = %q", pgtest.DSN(b)) }},
		{"postgres-2-instances", 2, func(b *testing.B) string { return fmt.Sprintf("driver = \"postgres\"\ndsn = %q", pgtest.DSN(b)) }},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			store := s.store(b)
			var ds []*app.Daemon
			for range s.instances {
				ds = append(ds, runDaemon(b, benchConfig(b, store)))
			}
			per := max(1, b.N/len(ds)) // requests per instance
			reps := make([]*loadgen.Report, len(ds))
			errs := make([]error, len(ds))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, d := range ds {
				wg.Go(func() {
					reps[i], errs[i] = loadgen.Run(b.Context(), loadgen.Config{
						Server: d.RADIUSAddr(), Secret: []byte(secret), Concurrency: 64 / len(ds), Requests: int64(per),
						Seed: uint64(i + 1), Retry: 2 * time.Second,
					})
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			var acked, lost int64
			var p50, p99 float64
			for i, rep := range reps {
				if errs[i] != nil {
					b.Fatal(errs[i])
				}
				acked, lost = acked+rep.Acked, lost+rep.Lost
				p50, p99 = max(p50, rep.AckLatency.P50MS), max(p99, rep.AckLatency.P99MS)
			}
			if want := int64(per * len(ds)); acked != want {
				b.Errorf("acked %d of %d (lost %d)", acked, want, lost)
			}
			b.ReportMetric(float64(acked)/elapsed.Seconds(), "acks/s")
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
		})
	}
}
