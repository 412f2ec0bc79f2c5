package app

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"authwatch/radius"
	"authwatch/watcher"
)

// metrics is the daemon's Prometheus registry. Counters that parts already
// keep (the RADIUS listener's, the hub's, each router's) are read at scrape
// time by a collector, so the hot paths pay nothing twice; what only exists
// as a moment (a commit's duration, its size) is observed by hooks.
type metrics struct {
	reg *prometheus.Registry

	commitSeconds prometheus.Histogram
	batchEvents   prometheus.Histogram
	commitErrors  prometheus.Counter
	events        *prometheus.CounterVec
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "authwatch_store_commit_seconds", Help: "Time to commit one batch of events (acks wait for it).",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
	})
	m.batchEvents = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "authwatch_store_batch_events", Help: "Events per committed transaction (group commit).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.commitErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authwatch_store_commit_errors_total", Help: "Failed commits; their events were not acknowledged.",
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authwatch_events_total", Help: "Events stored, by kind and source (probe results are http.up/http.down).",
	}, []string{"kind", "source"})
	m.reg.MustRegister(m.commitSeconds, m.batchEvents, m.commitErrors, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&daemonCollector{d: d}, &sourcesCollector{d: d})

	d.rec.OnCommit(func(batch []watcher.Event, took time.Duration, err error) {
		if err != nil {
			m.commitErrors.Inc()
			return
		}
		m.commitSeconds.Observe(took.Seconds())
		m.batchEvents.Observe(float64(len(batch)))
	})
	d.rec.OnApplied(func(ev watcher.Event, _ []string) {
		m.events.WithLabelValues(string(ev.Kind), sourceLabel(ev.Source)).Inc()
	})
	return m
}

// sourceLabel keeps the label set small: "routeros:bras-1" counts under
// "routeros" (per-router numbers have their own metrics).
func sourceLabel(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i]
		}
	}
	return s
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var (
	descRadiusPackets = prometheus.NewDesc("authwatch_radius_packets_total", "RADIUS packets received, by NAS and code.", []string{"nas", "code"}, nil)
	descRadiusAcked   = prometheus.NewDesc("authwatch_radius_acked_total", "Accounting-Responses sent after commit, by NAS.", []string{"nas"}, nil)
	descRadiusLastPkt = prometheus.NewDesc("authwatch_radius_last_packet_timestamp_seconds", "When the NAS last sent a datagram, verified or not (absent: never).", []string{"nas"}, nil)
	descRadiusLastAck = prometheus.NewDesc("authwatch_radius_last_ack_timestamp_seconds", "When the NAS was last answered (absent: never).", []string{"nas"}, nil)
	descRadiusDropped = prometheus.NewDesc("authwatch_radius_dropped_total", "RADIUS packets dropped without an answer, by reason.", []string{"reason"}, nil)
	descRadiusDupes   = prometheus.NewDesc("authwatch_radius_duplicates_answered_total", "Retransmissions answered again from the duplicate cache (stored once).", nil, nil)
	descRadiusAckLat  = prometheus.NewDesc("authwatch_radius_ack_latency_seconds", "Time from an Accounting-Request's arrival to its Accounting-Response (the commit included).", nil, nil)
	descRadiusBadAttr = prometheus.NewDesc("authwatch_radius_bad_attributes_total", "Malformed attributes left out of stored events.", nil, nil)
	descWSClients     = prometheus.NewDesc("authwatch_websocket_subscribers", "Live subscriptions (websockets and internal).", nil, nil)
	descWSCutoffs     = prometheus.NewDesc("authwatch_websocket_cutoffs_total", "Subscribers cut off for falling behind.", nil, nil)
	descCustomers     = prometheus.NewDesc("authwatch_customers", "Logins in the state.", nil, nil)
	descOnline        = prometheus.NewDesc("authwatch_customers_online", "Logins with an open session.", nil, nil)
	descSessions      = prometheus.NewDesc("authwatch_sessions_open", "Open sessions.", nil, nil)
	descQueued        = prometheus.NewDesc("authwatch_store_queued_events", "Events waiting to be committed.", nil, nil)
	descCPSeq         = prometheus.NewDesc("authwatch_state_checkpoint_seq", "Seq of the state checkpoint this instance saved or loaded last.", nil, nil)
	descCPAt          = prometheus.NewDesc("authwatch_state_checkpoint_timestamp_seconds", "When the store last held the state as of then (saved, or found up to date).", nil, nil)
	descCPBytes       = prometheus.NewDesc("authwatch_state_checkpoint_bytes", "Size of the last state checkpoint saved (gzipped JSON).", nil, nil)
	descCPTook        = prometheus.NewDesc("authwatch_state_checkpoint_duration_seconds", "Time the last state checkpoint took to serialise and save.", nil, nil)
	descCPErrors      = prometheus.NewDesc("authwatch_state_checkpoint_errors_total", "State checkpoints that failed (retention waits for a good one).", nil, nil)
	descRouterUp      = prometheus.NewDesc("authwatch_routeros_connected", "1 when the RouterOS API connection is up.", []string{"router"}, nil)
	descRouterRecon   = prometheus.NewDesc("authwatch_routeros_reconnects_total", "RouterOS API reconnections.", []string{"router"}, nil)
	descRouterBad     = prometheus.NewDesc("authwatch_routeros_malformed_total", "Malformed RouterOS replies and log lines counted and skipped.", []string{"router"}, nil)
	descRouterSess    = prometheus.NewDesc("authwatch_routeros_sessions", "Active PPP sessions the router lists.", []string{"router"}, nil)
	descProxyReplies  = prometheus.NewDesc("authwatch_proxy_replies_total", "Access-Request answers relayed to the NAS, by code.", []string{"code"}, nil)
	descProxyDropped  = prometheus.NewDesc("authwatch_proxy_dropped_total", "Access-Requests left unanswered, by reason.", []string{"reason"}, nil)
	descUpRequests    = prometheus.NewDesc("authwatch_proxy_upstream_requests_total", "Requests sent to an upstream RADIUS server, by port.", []string{"upstream", "port"}, nil)
	descUpTimeouts    = prometheus.NewDesc("authwatch_proxy_upstream_timeouts_total", "Requests an upstream left unanswered after every try.", []string{"upstream", "port"}, nil)
	descUpDead        = prometheus.NewDesc("authwatch_proxy_upstream_dead", "1 while an upstream is skipped as dead.", []string{"upstream", "port"}, nil)
	descUpProbes      = prometheus.NewDesc("authwatch_proxy_upstream_status_probes_total", "Status-Servers sent to a dead upstream.", []string{"upstream", "port"}, nil)
	descUpLatency     = prometheus.NewDesc("authwatch_proxy_upstream_latency_seconds", "Time from the first try to the upstream's verified answer.", []string{"upstream", "port"}, nil)
)

// daemonCollector reads the parts' own counters at scrape time.
type daemonCollector struct{ d *Daemon }

func (c *daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRadiusPackets, descRadiusAcked, descRadiusLastPkt, descRadiusLastAck, descRadiusDropped, descRadiusDupes, descRadiusBadAttr, descRadiusAckLat,
		descWSClients, descWSCutoffs, descCustomers, descOnline, descSessions, descQueued,
		descCPSeq, descCPAt, descCPBytes, descCPTook, descCPErrors,
		descRouterUp, descRouterRecon, descRouterBad, descRouterSess,
		descProxyReplies, descProxyDropped, descUpRequests, descUpTimeouts, descUpDead, descUpProbes, descUpLatency} {
		ch <- d
	}
}

func (c *daemonCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	rs := c.d.radius.Stats()
	for nas, ns := range rs.NAS {
		for code, n := range ns.Packets {
			counter(descRadiusPackets, float64(n), nas, code)
		}
		counter(descRadiusAcked, float64(ns.Acked), nas)
		if !ns.LastPacket.IsZero() {
			gauge(descRadiusLastPkt, float64(ns.LastPacket.UnixNano())/1e9, nas)
		}
		if !ns.LastAcked.IsZero() {
			gauge(descRadiusLastAck, float64(ns.LastAcked.UnixNano())/1e9, nas)
		}
	}
	for reason, n := range rs.Dropped {
		counter(descRadiusDropped, float64(n), reason)
	}
	counter(descRadiusDupes, float64(rs.DuplicatesAnswered))
	counter(descRadiusBadAttr, float64(rs.BadAttributes))
	ch <- constHistogram(descRadiusAckLat, rs.AckLatency)

	hs := c.d.hub.Stats()
	gauge(descWSClients, float64(hs.Subscribers))
	counter(descWSCutoffs, float64(hs.Cutoffs))
	ss := c.d.state.Stats()
	gauge(descCustomers, float64(ss.Customers))
	gauge(descOnline, float64(ss.Online))
	gauge(descSessions, float64(ss.Sessions))
	gauge(descQueued, float64(c.d.rec.Stats().Queued))
	cp := &c.d.cp
	gauge(descCPSeq, float64(cp.seq.Load()))
	gauge(descCPAt, float64(cp.at.Load()))
	gauge(descCPBytes, float64(cp.bytes.Load()))
	gauge(descCPTook, time.Duration(cp.took.Load()).Seconds())
	counter(descCPErrors, float64(cp.errors.Load()))

	if c.d.proxy != nil {
		ps := c.d.proxy.Stats()
		for code, n := range ps.Replies {
			counter(descProxyReplies, float64(n), code)
		}
		for reason, n := range ps.Dropped {
			counter(descProxyDropped, float64(n), reason)
		}
		for _, u := range ps.Upstreams {
			for port, p := range map[string]*radius.PoolStats{"auth": u.Auth, "acct": u.Acct} {
				if p == nil {
					continue
				}
				counter(descUpRequests, float64(p.Requests), u.Name, port)
				counter(descUpTimeouts, float64(p.Timeouts), u.Name, port)
				gauge(descUpDead, one(p.Dead), u.Name, port)
				counter(descUpProbes, float64(p.StatusProbes), u.Name, port)
				ch <- constHistogram(descUpLatency, p.Latency, u.Name, port)
			}
		}
	}
	for _, r := range c.d.routerStatus() {
		gauge(descRouterUp, one(r.Connected), r.Name)
		counter(descRouterRecon, float64(r.Reconnects), r.Name)
		counter(descRouterBad, float64(r.Malformed), r.Name)
		gauge(descRouterSess, float64(r.Sessions), r.Name)
	}
}

// constHistogram exports one of the radius package's latency histograms.
func constHistogram(d *prometheus.Desc, h radius.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = uint64(h.Buckets[i])
	}
	return prometheus.MustNewConstHistogram(d, uint64(h.Count), h.Sum, buckets, labels...)
}
