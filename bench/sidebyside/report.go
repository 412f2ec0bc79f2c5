package main

import (
	"fmt"
	"strings"
	"time"

	"authwatch/internal/load"
)

type results struct {
	Step       time.Duration
	Machine    machineInfo
	Started    time.Time
	Took       time.Duration
	Accounting []accountingResult
	WS         []wsRow
	Memory     []memRow
	Commands   []string
}

func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("## Machine and versions\n\n")
	w("Measured by `bench/run.sh` on %s (took %s).\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Took)
	w("| machine | |\n|---|---|\n")
	w("| CPU | %s, %s cores |\n| memory | %s |\n| system | %s, Linux %s |\n", m.CPU, m.Cores, m.Memory, m.OS, m.Kernel)
	w("| authwatch | %s, %s, modernc.org/sqlite %s |\n", m.Authwatch, m.Go, m.ModerncSQLite)
	w("| FreeRADIUS | %s; SQLite %s |\n\n", m.FreeRADIUS, m.SQLite)
	w("The load generator (`authwatch load`) runs on the same cores as the server it measures, as do other\n" +
		"processes of this shared machine: the 1-minute load average before each step is given, and numbers\n" +
		"vary by ±10–20 %% between runs. Compare rows of the same run, not runs.\n\n")

	if len(r.Accounting) > 0 {
		r.accountingMarkdown(w)
	}
	if len(r.WS) > 0 {
		r.wsMarkdown(w)
	}
	if len(r.Memory) > 0 {
		r.memoryMarkdown(w)
	}
	if len(r.Commands) > 0 {
		w("<details><summary>Commands of this run</summary>\n\n")
		w("Servers, each in a new temporary directory with a generated configuration (`KEEP=1 bench/run.sh` keeps them):\n\n```\n")
		w("authwatch serve -config DIR/authwatch.toml        # bench/sidebyside/main.go: authwatchConf\n")
		w("freeradius -f -l stdout -d DIR -n radiusd         # bench/sidebyside/freeradius.go: radiusdConf\n")
		w("```\n\nLoad, in order:\n\n```\n")
		seen := map[string]bool{}
		for _, c := range r.Commands {
			if !seen[c] {
				seen[c] = true
				w("%s\n", c)
			}
		}
		w("```\n\n</details>\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func (r *results) accountingMarkdown(w func(string, ...any)) {
	w("## Accounting (authwatch vs FreeRADIUS)\n\n")
	w("Same load against each server, each started fresh for every step: 4 NAS (UDP sockets), 10,000 customers (9 in 10 online),\n"+
		"1 Start : 8 Interim-Update : 1 Stop, retransmission after 1 s, 3 tries. **Closed loop**: 64 or 512 requests in flight, %s each.\n"+
		"**Sustained**: open loop at a fixed rate, the highest tried (from 90 %% of the better closed loop, then that peak itself, or down\n"+
		"by a fifth at a time, then twice halfway between the highest rate held and the lowest not) with at least %.0f %% of it acked per\n"+
		"second, nothing lost and ack p99 under %.0f ms. Latency runs from a request's\n"+
		"first transmission to its answer. Server CPU and bytes written are the server process's (`/proc/PID/stat`, `/proc/PID/io`\n"+
		"write_bytes) during the 64-in-flight step.\n\n", r.Step, sustainFraction*100, ackP99Target)
	w("| server | storage | ack durable? | acked/s, 64 in flight | ack p50 / p99 / max ms | acked/s, 512 in flight | ack p50 / p99 / max ms | server CPU µs per ack | KiB written per ack | sustained req/s | ack p50 / p99 / max ms |\n")
	w("|---|---|---|---:|---|---:|---|---:|---:|---:|---|\n")
	for _, a := range r.Accounting {
		p, q := a.Peak64.Rep, a.Peak512.Rep
		cpuPer := 0.0
		if p.Acked > 0 {
			cpuPer = a.Peak64.CPU / float64(p.Acked) * 1e6
		}
		sus, susLat := "none", "–"
		if a.Sustained != nil {
			sus = fmt.Sprintf("%.0f", a.Sustained.Rep.Rate)
			susLat = latency(a.Sustained.Rep.AckLatency)
		}
		w("| %s | %s | %s | %.0f%s | %s | %.0f%s | %s | %.0f | %s | %s | %s |\n", a.Server.Name, a.Server.Storage, a.Server.Durable,
			p.AckedPerSec, lossNote(p), latency(p.AckLatency), q.AckedPerSec, lossNote(q), latency(q.AckLatency),
			cpuPer, perAck(a.Peak64.Written, p.Acked), sus, susLat)
	}
	w("\n")
	// Ratios authwatch / FreeRADIUS, this run.
	if len(r.Accounting) == 3 {
		aw := r.Accounting[0]
		w("| authwatch ÷ | 64 in flight | 512 in flight | sustained | target |\n|---|---:|---:|---:|---|\n")
		for _, i := range []int{1, 2} {
			fr := r.Accounting[i]
			target := map[int]string{1: "≥ 2× (sustained, p99 < 10 ms)", 2: "≥ 20×"}[i]
			w("| FreeRADIUS %s | %s | %s | %s | %s |\n", fr.Server.Storage,
				ratio(aw.Peak64.Rep.AckedPerSec, fr.Peak64.Rep.AckedPerSec), ratio(aw.Peak512.Rep.AckedPerSec, fr.Peak512.Rep.AckedPerSec),
				ratio(rate(aw.Sustained), rate(fr.Sustained)), target)
		}
		w("\n")
	}
	w("<details><summary>Every step of the accounting comparison</summary>\n\n")
	w("| server | storage | load | load avg before | offered/s | acked/s | sent | acked | retransmitted | lost | ack p50 / p99 / max ms | schedule lag p99 ms | server CPU s | KiB written per ack | events per commit | ms per commit |\n")
	w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
	for _, a := range r.Accounting {
		for _, s := range append([]step{a.Peak64, a.Peak512}, a.Ladder...) {
			x := s.Rep
			how, offered, lag := fmt.Sprintf("closed, %d in flight", x.Concurrency), "–", "–"
			if x.Mode == "open" {
				how, offered = "open", fmt.Sprintf("%.0f", x.Rate)
				if x.ScheduleLag != nil {
					lag = fmt.Sprintf("%.2f", x.ScheduleLag.P99MS)
				}
			}
			batch, commit := "–", "–"
			if s.Commits > 0 {
				batch, commit = fmt.Sprintf("%.1f", s.MeanBatch), fmt.Sprintf("%.2f", s.MeanCommitMS)
			}
			w("| %s | %s | %s | %s | %s | %.0f | %d | %d | %d | %d | %s | %s | %.1f | %s | %s | %s |\n", a.Server.Name, a.Server.Storage, how, s.LoadAvg,
				offered, x.AckedPerSec, x.Sent, x.Acked, x.Retransmitted, x.Lost, latency(x.AckLatency), lag,
				s.CPU, perAck(s.Written, x.Acked), batch, commit)
		}
	}
	w("\n</details>\n\n")
}

// lossNote flags a closed loop that lost requests (its NAS would have seen
// timeouts).
func lossNote(r *load.Report) string {
	if r.Lost == 0 && r.Retransmitted == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d lost, %d retransmitted)", r.Lost, r.Retransmitted)
}

// perAck is KiB written per ack.
func perAck(written, acked int64) string {
	if acked == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(written)/1024/float64(acked))
}

func rate(s *step) float64 {
	if s == nil {
		return 0
	}
	return s.Rep.Rate
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", a/b)
}

// latency is "p50 / p99 / max" in ms.
func latency(l load.Latency) string {
	return fmt.Sprintf("%.2f / %.2f / %.1f", l.P50MS, l.P99MS, l.MaxMS)
}

func (r *results) wsMarkdown(w func(string, ...any)) {
	w("## Event to websocket latency\n\n")
	w("authwatch ingesting 5,000 Accounting-Requests/s (open loop, 1,000 customers, default mix) while websocket subscribers\n" +
		"follow `/ws?login=CUSTOMER` (an agent on a customer's page) or `/ws?login=*` (a supervisor's wall). Latency is from the\n" +
		"request's first transmission to the moment its event is read off the subscriber's socket: parse, commit (fsync),\n" +
		"state, hub, JSON, websocket, all on loopback. A subscriber on one customer sees only that customer's events.\n\n")
	w("| subscribers | load avg before | acked/s | ack p99 ms | events expected | received | missing | cut off | event→ws p50 ms | p90 | p99 | max |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.WS {
		x := row.Step.Rep
		ws := x.WS
		w("| %s | %s | %.0f | %.2f | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.1f |\n", row.Label, row.Step.LoadAvg, x.AckedPerSec, x.AckLatency.P99MS,
			ws.Expected, ws.Received, ws.Missing, ws.Disconnected, ws.Latency.P50MS, ws.Latency.P90MS, ws.Latency.P99MS, ws.Latency.MaxMS)
	}
	w("\n")
}

func (r *results) memoryMarkdown(w func(string, ...any)) {
	w("## Memory\n\n")
	w("One authwatch, RSS and peak RSS read from `/proc/PID/status` (VmRSS, VmHWM); sessions from `authwatch_sessions_open` on `/metrics`.\n" +
		"The 100,000 sessions are 100,000 customers' Starts (closed loop, 64 in flight). The state checkpoint is saved every\n" +
		"20 s in this step (5 min by default) so that its peak shows in VmHWM; its \"took\" is the save's own duration. The restart\n" +
		"reads the last checkpoint (in parts of 500 customers) and replays the events after it.\n\n")
	w("| state | sessions open | VmRSS MiB | VmHWM MiB | Go heap in use MiB | took |\n|---|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Memory {
		took := "–"
		if m.Took > 0 {
			took = m.Took.Round(100 * time.Millisecond).String()
		}
		w("| %s | %.0f | %.0f | %.0f | %.0f | %s |\n", m.Label, m.Sessions, float64(m.RSS)/1024, float64(m.HWM)/1024, m.HeapMiB, took)
	}
	w("\n")
}
