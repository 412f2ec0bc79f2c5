package radius_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
)

// BenchmarkListener measures accounting requests acknowledged per second end
// to end: a NAS client with 64 requests in flight over loopback UDP, the
// Listener, a real Recorder group-committing to SQLite (synchronous=FULL),
// every answer sent after its commit. The load generator shares the CPUs.
//
//	go test -run '^$' -bench Listener -benchtime 100000x ./radius/
func BenchmarkListener(b *testing.B) {
	const inFlight = 64
	h := startListener(b, localNAS, authradius.Options{})
	c := h.client(radiustest.ClientOptions{Retry: 2 * time.Second, Tries: 3})
	ctx := context.Background()

	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		wg        sync.WaitGroup
		failed    atomic.Int64
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
				// Every request differs, or duplicate detection would
				// answer from cache without storing.
				p, err := radiustest.Acct{
					Status:      rfc2866.AcctStatusType_Value_InterimUpdate,
					User:        "user" + strconv.Itoa(int(i%5000)),
					SessionID:   strconv.FormatInt(i, 16),
					MAC:         "AA:BB:CC:00:11:22",
					IP:          netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}),
					NASPortID:   "ether2.100",
					InputOctets: uint64(i) * 1500, OutputOctets: uint64(i) * 9000,
					SessionTime: uint32(i),
				}.Packet(testSecret)
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				if _, err := c.ExchangeRaw(ctx, p); err != nil {
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
		b.Errorf("%d requests unanswered", n)
	}
	reportLatencies(b, latencies, elapsed, "acks/s", time.Millisecond, "ms")
	b.ReportMetric(float64(c.Retransmits()), "retransmits")
	if st := h.rec.Stats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Committed)/float64(st.Batches), "events/commit")
	}
}

// reportLatencies reports the rate of answered requests and the p50 and p99
// of their latencies (sorted in place), in the given unit.
func reportLatencies(b *testing.B, latencies []time.Duration, elapsed time.Duration, rate string, unit time.Duration, unitName string) {
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(unit)
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), rate)
	b.ReportMetric(pct(0.50), "p50-"+unitName)
	b.ReportMetric(pct(0.99), "p99-"+unitName)
}
