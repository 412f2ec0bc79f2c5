package load_test

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"authwatch/internal/load"
)

var benchRate = flag.Float64("load.rate", 0, "BenchmarkDaemon: open loop at this rate instead of closed loop with 64 in flight")

// BenchmarkDaemon is `authwatch load` against the whole daemon in-process
// (Listener, Recorder, SQLite with synchronous=FULL, state, hub, watches):
// the in-process twin of bench/run.sh's authwatch measurement, for profiling
// both sides at once. Closed loop with 64 in flight, or open loop with
// -load.rate:
//
//	go test -run '^$' -bench Daemon -benchtime 100000x -cpuprofile cpu.out ./internal/load/
//	go test -run '^$' -bench Daemon -benchtime 200000x -load.rate=20000 -cpuprofile cpu.out ./internal/load/
func BenchmarkDaemon(b *testing.B) {
	d := startDaemon(b)
	cfg := load.Config{
		Server: d.RADIUSAddr(), Secret: testSecret, Customers: 10000, Concurrency: 64, Requests: int64(b.N), Seed: 1,
		Retry: 2 * time.Second,
	}
	if *benchRate > 0 {
		cfg.Rate = *benchRate
	}
	w0 := writtenBytes()
	b.ResetTimer()
	rep, err := load.Run(b.Context(), cfg)
	b.StopTimer()
	written := writtenBytes() - w0
	if err != nil {
		b.Fatal(err)
	}
	if rep.Acked != int64(b.N) {
		b.Errorf("acked %d of %d (lost %d)", rep.Acked, b.N, rep.Lost)
	}
	b.ReportMetric(rep.AckedPerSec, "acks/s")
	b.ReportMetric(rep.AckLatency.P50MS, "p50-ms")
	b.ReportMetric(rep.AckLatency.P99MS, "p99-ms")
	b.ReportMetric(float64(written)/1024/float64(b.N), "KiB-written/ack")
	b.ReportMetric(0, "ns/op")
}

// writtenBytes is what this process has caused to be written to storage
// (write_bytes of /proc/self/io), 0 where there is no such file.
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
