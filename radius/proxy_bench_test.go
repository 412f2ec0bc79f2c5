package radius_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
)

// BenchmarkProxyAccess measures PAP Access-Requests (with
// Message-Authenticator) answered per second and their latency, sent
// straight to a real FreeRADIUS ("direct") and through the proxy
// ("proxied"), with 1 and 32 requests in flight. The proxy records every
// answer as an event in a real SQLite store, as deployed. Client, proxy and
// FreeRADIUS share the machine's CPUs. The proxy's added latency is the
// difference between the proxied and direct p50/p99.
//
//	go test -run '^$' -bench ProxyAccess -benchtime 20000x ./radius/
func BenchmarkProxyAccess(b *testing.B) {
	fr := startFreeRADIUS(b, "bench", false)
	cfg := authradius.DefaultProxyConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Upstreams = []authradius.Upstream{{Name: "bench", Address: fr.auth, Secret: authradius.Secret(fr.secret)}}
	// Info level, as deployed: the per-request debug line is not measured.
	h := startProxy(b, proxyNAS, cfg, authradius.ProxyOptions{Logger: slog.New(slog.DiscardHandler)})

	for _, inFlight := range []int{1, 32} {
		for _, mode := range []struct {
			name, addr string
			secret     []byte
		}{
			{"direct", fr.auth, []byte(fr.secret)},
			{"proxied", h.addr, testSecret},
		} {
			b.Run(fmt.Sprintf("%s/inflight=%d", mode.name, inFlight), func(b *testing.B) {
				benchAccess(b, mode.addr, mode.secret, inFlight)
			})
		}
	}
}

func benchAccess(b *testing.B, addr string, secret []byte, inFlight int) {
	c, err := radiustest.NewClient(addr, secret, radiustest.ClientOptions{Retry: 2 * time.Second, Tries: 3})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var (
		next      atomic.Int64
		failed    atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		wg        sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			local := make([]time.Duration, 0, b.N/inFlight+1)
			defer func() {
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
			}()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				user := fmt.Sprintf("bench%d", i%5000)
				p, err := radiustest.Access{User: user, Password: user + "-pass", MAC: "AA:BB:CC:00:11:22", NASPortID: "ether2.100"}.Packet(secret)
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				raw, err := c.ExchangeRaw(context.Background(), p)
				if err != nil || radius.Code(raw[0]) != radius.CodeAccessAccept {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Errorf("%d requests failed", n)
	}
	reportLatencies(b, latencies, elapsed, "req/s", time.Microsecond, "µs")
	b.ReportMetric(float64(c.Retransmits()), "retransmits")
}
