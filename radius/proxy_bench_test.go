package radius_test

import (
	"context"
	"fmt"
	"log/slog"
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
	closedLoop(b, inFlight, "req/s", time.Microsecond, "µs", func(i int64) (*radius.Packet, error) {
		user := fmt.Sprintf("bench%d", i%5000)
		return radiustest.Access{User: user, Password: user + "-pass", MAC: "AA:BB:CC:00:11:22", NASPortID: "ether2.100"}.Packet(secret)
	}, func(p *radius.Packet) bool {
		raw, err := c.ExchangeRaw(context.Background(), p)
		return err == nil && radius.Code(raw[0]) == radius.CodeAccessAccept
	})
	b.ReportMetric(float64(c.Retransmits()), "retransmits")
}
