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

	"layeh.com/radius"
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

	closedLoop(b, inFlight, "acks/s", time.Millisecond, "ms", func(i int64) (*radius.Packet, error) {
		// Every request differs, or duplicate detection would answer from
		// cache without storing.
		return radiustest.Acct{
			Status:      rfc2866.AcctStatusType_Value_InterimUpdate,
			User:        "user" + strconv.Itoa(int(i%5000)),
			SessionID:   strconv.FormatInt(i, 16),
			MAC:         "AA:BB:CC:00:11:22",
			IP:          netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}),
			NASPortID:   "ether2.100",
			InputOctets: uint64(i) * 1500, OutputOctets: uint64(i) * 9000,
			SessionTime: uint32(i),
		}.Packet(testSecret)
	}, func(p *radius.Packet) bool {
		_, err := c.ExchangeRaw(ctx, p)
		return err == nil
	})
	b.ReportMetric(float64(c.Retransmits()), "retransmits")
	if st := h.rec.Stats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Committed)/float64(st.Batches), "events/commit")
	}
}

// closedLoop sends b.N requests, made by build, with inFlight of them
// outstanding at any time; send says whether one got its answer. It reports
// the rate of answered requests and their p50 and p99 latencies in unit.
func closedLoop(b *testing.B, inFlight int, rate string, unit time.Duration, unitName string,
	build func(i int64) (*radius.Packet, error), send func(*radius.Packet) bool) {
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
				p, err := build(i)
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				if !send(p) {
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
		b.Errorf("%d requests unanswered or refused", n)
	}
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
