package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"authwatch/internal/load"
)

// sustainFraction: a rate is sustained when at least this fraction of it is
// acked per second.
var sustainFraction = 0.97

// ackP99Target is the target for ack latency at the sustained rate.
const ackP99Target = 10.0 // ms

// server is one contender of the accounting comparison.
type server struct {
	Name    string
	Storage string
	Durable string
	start   func(*bench, string) (*proc, error)
}

var servers = []server{
	{Name: "authwatch", Storage: "SQLite (WAL), group commit", Durable: "yes: answer after the commit's fsync (synchronous=FULL)",
		start: func(b *bench, n string) (*proc, error) { return b.startAuthwatch(n) }},
	{Name: "FreeRADIUS", Storage: "`detail` file", Durable: "no: answer after write(2), no fsync",
		start: func(b *bench, n string) (*proc, error) { return b.startFreeRADIUS(n, false) }},
	{Name: "FreeRADIUS", Storage: "`rlm_sql` → SQLite", Durable: "yes: one autocommit (fsync) per query, SQLite's defaults",
		start: func(b *bench, n string) (*proc, error) { return b.startFreeRADIUS(n, true) }},
}

// step is one load run against a fresh server.
type step struct {
	Rep     *load.Report
	CPU     float64 // server CPU seconds during the run
	Written int64   // bytes the server wrote to storage during the run
	LoadAvg string  // 1-minute load average before the run
	// authwatch only, from /metrics: commits and their mean size and time.
	Commits      float64
	MeanBatch    float64
	MeanCommitMS float64
}

// storeMetrics reads the group-commit figures from authwatch's /metrics.
func (s *step) storeMetrics(p *proc) {
	if p.http == "" {
		return
	}
	n, err1 := metric(p, "authwatch_store_commit_seconds_count")
	sec, err2 := metric(p, "authwatch_store_commit_seconds_sum")
	evs, err3 := metric(p, "authwatch_store_batch_events_sum")
	if err1 != nil || err2 != nil || err3 != nil || n == 0 {
		return
	}
	s.Commits, s.MeanBatch, s.MeanCommitMS = n, evs/n, sec/n*1000
}

func (s step) sustained() bool {
	r := s.Rep
	return r.Lost == 0 && r.Aborted == 0 && r.AckedPerSec >= sustainFraction*r.Rate && r.AckLatency.P99MS < ackP99Target
}

type accountingResult struct {
	Server server
	// Peak64 and Peak512 are closed loops with 64 and 512 requests in
	// flight: few in flight measure latency-bound throughput (what a
	// commit costs), many let group commit fill its batches.
	Peak64, Peak512 step
	Sustained       *step  // the highest rate sustained, if any
	Ladder          []step // every open-loop rate tried
}

// peak is the better of the two closed loops.
func (a *accountingResult) peak() float64 {
	return max(a.Peak64.Rep.AckedPerSec, a.Peak512.Rep.AckedPerSec)
}

// run starts a fresh server, runs one load against it and stops it.
func (b *bench) run(s server, name string, args ...string) (step, error) {
	p, err := s.start(b, name)
	if err != nil {
		return step{}, err
	}
	defer p.stop()
	la := loadAvg()
	cpu0, w0 := p.cpuSeconds(), p.written()
	rep, err := b.runLoad(p, args...)
	if err != nil {
		return step{}, err
	}
	st := step{Rep: rep, CPU: p.cpuSeconds() - cpu0, Written: p.written() - w0, LoadAvg: la}
	st.storeMetrics(p)
	return st, nil
}

func (b *bench) accounting() ([]accountingResult, error) {
	dur := b.step.String()
	var out []accountingResult
	for i, s := range servers {
		name := fmt.Sprintf("acct-%d", i)
		res := accountingResult{Server: s}
		for _, c := range []struct {
			inFlight string
			dst      *step
		}{{"64", &res.Peak64}, {"512", &res.Peak512}} {
			b.logf("%s %s: closed loop, %s in flight, %s", s.Name, s.Storage, c.inFlight, dur)
			st, err := b.run(s, name+"-closed"+c.inFlight, append([]string{"-concurrency", c.inFlight, "-duration", dur}, commonLoad...)...)
			if err != nil {
				return nil, err
			}
			b.logf("  %.0f acked/s, p99 %.2f ms, lost %d", st.Rep.AckedPerSec, st.Rep.AckLatency.P99MS, st.Rep.Lost)
			*c.dst = st
		}
		// Open loop from 90 % of the peak: up to the peak when that holds,
		// down by a fifth at a time when it does not; then twice halfway
		// between the highest rate held and the lowest one above it that
		// was not, so that a fifth's step does not decide the result.
		peak := res.peak()
		rate := roundRate(0.9 * peak)
		try := 0
		open := func(rate float64) (step, error) {
			b.logf("  open loop at %.0f/s", rate)
			st, err := b.run(s, fmt.Sprintf("%s-rate%d", name, try), append([]string{"-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-duration", dur}, commonLoad...)...)
			try++
			if err != nil {
				return st, err
			}
			res.Ladder = append(res.Ladder, st)
			b.logf("    acked %.0f/s, p99 %.2f ms, lost %d: sustained %v", st.Rep.AckedPerSec, st.Rep.AckLatency.P99MS, st.Rep.Lost, st.sustained())
			return st, nil
		}
		failed := 0.0 // the lowest rate tried and not held
		for try < 8 && rate >= 10 {
			first := try == 0
			st, err := open(rate)
			if err != nil {
				return nil, err
			}
			if !st.sustained() && (failed == 0 || rate < failed) {
				failed = rate
			}
			if st.sustained() {
				if res.Sustained == nil || st.Rep.Rate > res.Sustained.Rep.Rate {
					res.Sustained = &st
				}
				if first {
					// 90 % held: see whether the peak itself does.
					rate = roundRate(peak)
					if rate > st.Rep.Rate {
						continue
					}
				}
				break
			}
			if res.Sustained != nil {
				break // the step above 90 % failed; 90 % stands
			}
			rate = roundRate(rate * 0.8)
		}
		for range 2 {
			if res.Sustained == nil || failed == 0 {
				break
			}
			mid := roundRate((res.Sustained.Rep.Rate + failed) / 2)
			if mid <= res.Sustained.Rep.Rate || mid >= failed {
				break
			}
			st, err := open(mid)
			if err != nil {
				return nil, err
			}
			if st.sustained() {
				res.Sustained = &st
			} else {
				failed = mid
			}
		}
		out = append(out, res)
	}
	return out, nil
}

// roundRate rounds to two significant digits, so that rates read well.
func roundRate(r float64) float64 {
	if r <= 0 {
		return 0
	}
	mag := math.Pow(10, math.Floor(math.Log10(r))-1)
	return math.Floor(r/mag) * mag
}

type wsRow struct {
	Label string
	Step  step
}

// websocket measures event-to-websocket latency while authwatch ingests
// 5,000 requests/s from 1,000 customers.
func (b *bench) websocket() ([]wsRow, error) {
	cases := []struct {
		label            string
		logins, firehose int
	}{
		{"1 (firehose: every event)", 0, 1},
		{"1 (one customer)", 1, 0},
		{"100 (one customer each)", 100, 0},
		{"1,000 (one customer each)", 1000, 0},
		{"1,000 (one customer each) + 1 firehose", 1000, 1},
	}
	var rows []wsRow
	for i, c := range cases {
		b.logf("websocket: %s at 5000 req/s for %s", c.label, b.step)
		p, err := b.startAuthwatch(fmt.Sprintf("ws-%d", i))
		if err != nil {
			return nil, err
		}
		la := loadAvg()
		cpu0, w0 := p.cpuSeconds(), p.written()
		rep, err := b.runLoad(p, "-rate", "5000", "-duration", b.step.String(), "-nas", "4", "-customers", "1000",
			"-retry", "1s", "-tries", "3",
			"-ws", "http://"+p.http, "-ws-logins", strconv.Itoa(c.logins), "-ws-firehose", strconv.Itoa(c.firehose))
		st := step{Rep: rep, CPU: p.cpuSeconds() - cpu0, Written: p.written() - w0, LoadAvg: la}
		st.storeMetrics(p)
		p.stop()
		if err != nil {
			return nil, err
		}
		if rep.WS == nil {
			return nil, fmt.Errorf("websocket run without a websocket report")
		}
		b.logf("  event→ws p50 %.2f p99 %.2f ms; received %d/%d", rep.WS.Latency.P50MS, rep.WS.Latency.P99MS, rep.WS.Received, rep.WS.Expected)
		rows = append(rows, wsRow{Label: c.label, Step: st})
	}
	return rows, nil
}

type memRow struct {
	Label    string
	Sessions float64
	RSS, HWM int64   // KiB
	HeapMiB  float64 // Go heap in use (go_memstats_heap_inuse_bytes)
	Took     time.Duration
}

// memory measures authwatch's RSS empty, with 100,000 open sessions, and
// with the same sessions after a restart (state rebuilt from the store).
func (b *bench) memory() ([]memRow, error) {
	const sessions = 100000
	const every = 20 * time.Second
	p, err := b.startAuthwatchCheckpoints("memory", every)
	if err != nil {
		return nil, err
	}
	defer func() { p.stop() }()
	row := func(label string, settle, took time.Duration) (memRow, error) {
		time.Sleep(settle) // let the last commits and the GC settle
		n, err := metric(p, "authwatch_sessions_open")
		if err != nil {
			return memRow{}, err
		}
		heap, _ := metric(p, "go_memstats_heap_inuse_bytes")
		rss, hwm, err := p.memory()
		return memRow{Label: label, Sessions: n, RSS: rss, HWM: hwm, HeapMiB: heap / (1 << 20), Took: took}, err
	}
	var rows []memRow
	add := func(label string, settle, took time.Duration) error {
		r, err := row(label, settle, took)
		rows = append(rows, r)
		return err
	}
	if err := add("just started, empty store", 2*time.Second, 0); err != nil {
		return nil, err
	}

	b.logf("memory: %d Starts", sessions)
	start := time.Now()
	rep, err := b.runLoad(p, "-concurrency", "64", "-requests", strconv.Itoa(sessions), "-nas", "4",
		"-customers", strconv.Itoa(sessions), "-mix", "start=1,interim=0,stop=0", "-retry", "1s", "-tries", "3")
	if err != nil {
		return nil, err
	}
	if rep.Acked != sessions {
		return nil, fmt.Errorf("memory: %d of %d Starts acked", rep.Acked, sessions)
	}
	if err := add(fmt.Sprintf("after %d Starts (%d customers online)", sessions, sessions), 2*time.Second, time.Since(start)); err != nil {
		return nil, err
	}

	// The state checkpoint, saved every checkpoint_interval while events
	// come, serialises every customer: its peak is the VmHWM of this row.
	b.logf("memory: waiting for a state checkpoint")
	deadline := time.Now().Add(2 * every)
	for {
		seq, err := metric(p, "authwatch_state_checkpoint_seq")
		if err == nil && seq >= sessions {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("memory: no state checkpoint of the %d sessions after %s (%v)", sessions, 2*every, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cpTook, _ := metric(p, "authwatch_state_checkpoint_duration_seconds")
	if err := add(fmt.Sprintf("after a state checkpoint (checkpoint_interval %s here)", every), time.Second, time.Duration(cpTook*float64(time.Second))); err != nil {
		return nil, err
	}

	b.logf("memory: restart")
	start = time.Now()
	if p, err = b.restart(p); err != nil {
		return nil, err
	}
	took := time.Since(start)
	if err := add("restarted: state rebuilt from checkpoint + store, 2 s later", 2*time.Second, took); err != nil {
		return nil, err
	}
	if err := add("restarted, 30 s later", 28*time.Second, 0); err != nil {
		return nil, err
	}
	return rows, nil
}

// machineInfo says where the numbers come from.
type machineInfo struct {
	CPU, Cores, Memory, Kernel, OS                   string
	Authwatch, Go, ModerncSQLite, FreeRADIUS, SQLite string
}

func machine(bin string) machineInfo {
	m := machineInfo{Cores: strconv.Itoa(runtime.NumCPU()), Go: runtime.Version()}
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "Model name:"); ok {
				m.CPU = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if out, err := exec.Command(bin, "version").Output(); err == nil {
		m.Authwatch = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("go", "version", "-m", bin).Output(); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "dep" && f[1] == "modernc.org/sqlite" {
				m.ModerncSQLite = f[2]
			}
		}
	}
	m.FreeRADIUS = freeRADIUSVersion()
	if out, err := exec.Command("sqlite3", "--version").Output(); err == nil {
		m.SQLite = strings.Fields(string(out))[0]
	}
	return m
}
