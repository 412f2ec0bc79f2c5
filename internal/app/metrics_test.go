package app_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher/routeros/routerostest"
)

// scrape returns every sample of /metrics by its name and labels as written.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsMoveWithPackets(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	d, _ := start(t, cfg)
	base := "http://" + d.HTTPAddr()
	before := scrape(t, base)

	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "1", IP: netip.MustParseAddr("100.64.0.1")})
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_InterimUpdate, User: "joao", SessionID: "1"})
	// A packet signed with the wrong secret is dropped and counted.
	bad, err := radiustest.NewClient(d.RADIUSAddr(), []byte("wrong"), radiustest.ClientOptions{Retry: 100 * time.Millisecond, Tries: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "x"}.Packet([]byte("wrong"))
	if _, err := bad.Exchange(t.Context(), p); err == nil {
		t.Fatal("a packet with the wrong secret was answered")
	}
	bad.Close()

	// Observers (events_total) run just after the ack: wait for the last one.
	const last = `authwatch_events_total{kind="session.update",source="radius"}`
	after := scrape(t, base)
	for deadline := time.Now().Add(5 * time.Second); after[last]-before[last] < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		after = scrape(t, base)
	}
	tests := []struct {
		sample string
		delta  float64
	}{
		{`authwatch_radius_packets_total{code="Accounting-Request",nas="bras-centro"}`, 3},
		{`authwatch_radius_acked_total{nas="bras-centro"}`, 2},
		{`authwatch_radius_dropped_total{reason="bad_authenticator"}`, 1},
		{`authwatch_events_total{kind="session.start",source="radius"}`, 1},
		{`authwatch_events_total{kind="session.update",source="radius"}`, 1},
		{`authwatch_store_batch_events_count`, 2},
		{`authwatch_radius_ack_latency_seconds_count`, 2},
		{`authwatch_customers_online`, 1},
	}
	for _, tt := range tests {
		got, ok := after[tt.sample]
		if !ok {
			t.Errorf("%s missing from /metrics", tt.sample)
			continue
		}
		if d := got - before[tt.sample]; d != tt.delta {
			t.Errorf("%s moved by %v, want %v", tt.sample, d, tt.delta)
		}
	}
	for _, sample := range []string{`authwatch_radius_last_packet_timestamp_seconds{nas="bras-centro"}`, `authwatch_radius_last_ack_timestamp_seconds{nas="bras-centro"}`} {
		if at := time.Unix(int64(after[sample]), 0); time.Since(at) > time.Minute {
			t.Errorf("%s = %v", sample, after[sample])
		}
	}
}

// TestDashboardUsesRealMetrics keeps docs/grafana-dashboard.json honest:
// every metric it queries is one /metrics serves.
func TestDashboardUsesRealMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	router, err := routerostest.New(routerostest.Options{User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	dir := t.TempDir()
	cfg := testConfig(t, filepath.Join(dir, "authwatch.db"))
	cfg.RouterOS = []config.RouterOS{{Name: "bras-norte", Address: router.Addr(), User: "u", Password: "p"}}
	withSources(t, cfg, dir)
	d, _ := start(t, cfg)
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "1"})
	served := map[string]bool{}
	// Observers run just after the ack, the log is read on its own: wait
	// for both.
	for deadline := time.Now().Add(5 * time.Second); !(served["authwatch_events_total"] && served["authwatch_frlog_last_line_timestamp_seconds"]) && time.Now().Before(deadline); {
		for sample := range scrape(t, "http://"+d.HTTPAddr()) {
			name, _, _ := strings.Cut(sample, "{")
			served[name] = true
		}
	}
	names := regexp.MustCompile(`authwatch_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 10 {
		t.Fatalf("only %d metric names in the dashboard", len(names))
	}
	for _, n := range names {
		if !served[n] {
			t.Errorf("dashboard queries %s, which /metrics does not serve", n)
		}
	}
}

// The state checkpoint is saved every checkpoint_interval once events came,
// and /metrics says so; a restart loads it and does not save it again.
func TestCheckpointMetrics(t *testing.T) {
	db := filepath.Join(t.TempDir(), "authwatch.db")
	cfg := testConfig(t, db)
	cfg.Store.CheckpointInterval = config.Duration(time.Second)
	d, stop := start(t, cfg)
	base := "http://" + d.HTTPAddr()
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "1", IP: netip.MustParseAddr("100.64.0.1")})
	m := scrape(t, base)
	for deadline := time.Now().Add(10 * time.Second); m["authwatch_state_checkpoint_seq"] < 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m = scrape(t, base)
	}
	if m["authwatch_state_checkpoint_seq"] != 1 || m["authwatch_state_checkpoint_bytes"] <= 0 || m["authwatch_state_checkpoint_errors_total"] != 0 {
		t.Fatalf("checkpoint metrics %v %v %v", m["authwatch_state_checkpoint_seq"], m["authwatch_state_checkpoint_bytes"], m["authwatch_state_checkpoint_errors_total"])
	}
	if at := m["authwatch_state_checkpoint_timestamp_seconds"]; time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Fatalf("checkpoint timestamp %v", at)
	}
	stop()

	d, _ = start(t, cfg)
	m = scrape(t, "http://"+d.HTTPAddr())
	if m["authwatch_state_checkpoint_seq"] != 1 || m["authwatch_customers_online"] != 1 {
		t.Fatalf("after a restart: checkpoint seq %v, online %v", m["authwatch_state_checkpoint_seq"], m["authwatch_customers_online"])
	}
	// Loaded, not saved: nothing changed since.
	if m["authwatch_state_checkpoint_bytes"] != 0 {
		t.Fatalf("the loaded checkpoint was saved again (%v bytes)", m["authwatch_state_checkpoint_bytes"])
	}
}

// The FreeRADIUS sources' metrics follow their Status: a log file read, and
// a SQL source whose database does not answer.
func TestSourceMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, filepath.Join(dir, "authwatch.db"))
	withSources(t, cfg, dir)
	d, _ := start(t, cfg)
	base := "http://" + d.HTTPAddr()
	m := scrape(t, base)
	for deadline := time.Now().Add(10 * time.Second); (m[`authwatch_frlog_lines_total{source="radius-1"}`] < 2 ||
		m[`authwatch_frsql_poll_failures_total{source="radius-db"}`] < 1) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m = scrape(t, base)
	}
	for sample, want := range map[string]float64{
		`authwatch_frlog_open{source="radius-1"}`:                1,
		`authwatch_frlog_lines_total{source="radius-1"}`:         2,
		`authwatch_frlog_unread_bytes{source="radius-1"}`:        0,
		`authwatch_frsql_connected{source="radius-db"}`:          0,
		`authwatch_frsql_invalid_rows_total{source="radius-db"}`: 0,
	} {
		if got, ok := m[sample]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", sample, got, ok, want)
		}
	}
	if m[`authwatch_frsql_poll_failures_total{source="radius-db"}`] < 1 {
		t.Errorf("no failed poll counted")
	}
	if at := m[`authwatch_frlog_last_line_timestamp_seconds{source="radius-1"}`]; time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("last line read at %v", at)
	}
}

// withSources adds to cfg a FreeRADIUS log with two lines to read, a SQL
// source whose database does not answer, and a proxy whose upstream does
// not either: every source's metrics are then served.
func withSources(t *testing.T, cfg *config.Config, dir string) {
	t.Helper()
	logPath := filepath.Join(dir, "radius.log")
	lines := "Wed Nov 25 10:00:00 2026 : Auth: (7) Login OK: [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)\n" +
		"Wed Nov 25 10:00:01 2026 : Info: Ready to process requests\n"
	if err := os.WriteFile(logPath, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	extra, err := config.Parse(fmt.Sprintf(`
[proxy]
listen = "127.0.0.1:0"
[[proxy.upstream]]
name = "radius-1"
address = "127.0.0.1:9"
secret = "upstream-secret"
[[freeradius_log]]
name = "radius-1"
path = %q
backfill = 10
[[sql_source]]
name = "radius-db"
driver = "postgres"
dsn = "postgres://authwatch:pw@127.0.0.1:1/radius?connect_timeout=1"
poll_interval = "100ms"
`, logPath))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Proxy, cfg.FreeRADIUSLog, cfg.SQLSources = extra.Proxy, extra.FreeRADIUSLog, extra.SQLSources
}
