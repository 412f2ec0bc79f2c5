package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"authwatch/watcher/frlog"
	"authwatch/watcher/frsql"
)

// The FreeRADIUS sources' and the PostgreSQL follower's metrics: what their
// Status on /healthz says, as numbers to alert on (a log file not read for
// an hour, a radacct poll failing, a follower not listening).
var (
	descLogOpen     = prometheus.NewDesc("authwatch_frlog_open", "1 while the FreeRADIUS log file is open.", []string{"source"}, nil)
	descLogLines    = prometheus.NewDesc("authwatch_frlog_lines_total", "FreeRADIUS log lines read.", []string{"source"}, nil)
	descLogUnknown  = prometheus.NewDesc("authwatch_frlog_unknown_lines_total", "FreeRADIUS log lines of a shape the parser does not know (skipped).", []string{"source"}, nil)
	descLogLag      = prometheus.NewDesc("authwatch_frlog_unread_bytes", "Bytes of the log file not read yet.", []string{"source"}, nil)
	descLogLastLine = prometheus.NewDesc("authwatch_frlog_last_line_timestamp_seconds", "When a line was last read (absent: never).", []string{"source"}, nil)
	descLogRotated  = prometheus.NewDesc("authwatch_frlog_rotations_total", "Log files renamed, removed or truncated under the reader.", []string{"source"}, nil)

	descSQLUp       = prometheus.NewDesc("authwatch_frsql_connected", "1 while the last poll of FreeRADIUS's SQL tables succeeded.", []string{"source"}, nil)
	descSQLPolls    = prometheus.NewDesc("authwatch_frsql_polls_total", "Polls of FreeRADIUS's SQL tables.", []string{"source"}, nil)
	descSQLFailures = prometheus.NewDesc("authwatch_frsql_poll_failures_total", "Failed polls.", []string{"source"}, nil)
	descSQLInvalid  = prometheus.NewDesc("authwatch_frsql_invalid_rows_total", "Rows that could not become an event (skipped).", []string{"source"}, nil)
	descSQLRows     = prometheus.NewDesc("authwatch_frsql_rows_total", "Rows read, by table.", []string{"source", "table"}, nil)
	descSQLLastRow  = prometheus.NewDesc("authwatch_frsql_last_row_timestamp_seconds", "Time of the last row read, by table (absent: none yet).", []string{"source", "table"}, nil)

	descFollowUp    = prometheus.NewDesc("authwatch_follower_listening", "1 while the follower of a shared PostgreSQL store listens for other instances' events.", nil, nil)
	descFollowSeq   = prometheus.NewDesc("authwatch_follower_last_seq", "Highest event seq the follower delivered.", nil, nil)
	descFollowRecon = prometheus.NewDesc("authwatch_follower_reconnects_total", "Times the follower's LISTEN connection was made again.", nil, nil)
)

// sourcesCollector reads the sources' Status at scrape time.
type sourcesCollector struct{ d *Daemon }

func (c *sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLogOpen, descLogLines, descLogUnknown, descLogLag, descLogLastLine, descLogRotated,
		descSQLUp, descSQLPolls, descSQLFailures, descSQLInvalid, descSQLRows, descSQLLastRow,
		descFollowUp, descFollowSeq, descFollowRecon} {
		ch <- d
	}
}

func (c *sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range statuses(c.d.logs, (*frlog.Source).Status) {
		gauge(descLogOpen, one(st.Open), st.Name)
		counter(descLogLines, st.Lines, st.Name)
		counter(descLogUnknown, st.Unknown, st.Name)
		gauge(descLogLag, float64(max(st.Size-st.Offset, 0)), st.Name)
		if !st.LastLine.IsZero() {
			gauge(descLogLastLine, float64(st.LastLine.UnixNano())/1e9, st.Name)
		}
		counter(descLogRotated, st.Rotations+st.Truncations, st.Name)
	}
	for _, st := range statuses(c.d.sqls, (*frsql.Source).Status) {
		gauge(descSQLUp, one(st.Connected), st.Name)
		counter(descSQLPolls, st.Polls, st.Name)
		counter(descSQLFailures, st.Failures, st.Name)
		counter(descSQLInvalid, st.Invalid, st.Name)
		for _, t := range []struct {
			name string
			rows int64
			last int64
			ok   bool
		}{
			{"radpostauth", st.PostAuth.Rows, st.PostAuth.LastRow.UnixNano(), st.PostAuth.Enabled && !st.PostAuth.LastRow.IsZero()},
			{"radacct", st.Acct.Rows, st.Acct.LastRow.UnixNano(), st.Acct.Enabled && !st.Acct.LastRow.IsZero()},
		} {
			counter(descSQLRows, t.rows, st.Name, t.name)
			if t.ok {
				gauge(descSQLLastRow, float64(t.last)/1e9, st.Name, t.name)
			}
		}
	}
	if s := c.d.shared; s != nil {
		st := s.follower.Stats()
		gauge(descFollowUp, one(st.Listening))
		gauge(descFollowSeq, float64(st.Last))
		counter(descFollowRecon, st.Reconnects)
	}
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
