package radius

import (
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// proxyCounters are the Proxy's own counters, beside the front's.
type proxyCounters struct {
	forwarded, events, eventErrors, acctForwarded, acctFailed atomic.Int64
	replies                                                   [256]atomic.Int64 // relayed to the NAS, by code
}

// ProxyStats is a snapshot of the Proxy's counters. Counters only grow;
// the fields marked as gauges are current values.
type ProxyStats struct {
	Received int64 `json:"received"` // datagrams on the Access-Request socket
	// Forwarded counts Access-Requests sent upstream: once per NAS
	// request, however many tries and upstreams it took.
	Forwarded int64 `json:"forwarded"`
	// Replies counts answers relayed to the NAS by code name
	// (Access-Accept, Access-Reject, Access-Challenge).
	Replies            map[string]int64 `json:"replies"`
	DuplicatesAnswered int64            `json:"duplicates_answered"` // retransmissions answered from the cache
	StatusServer       int64            `json:"status_server"`       // answered locally
	WriteErrors        int64            `json:"write_errors"`
	// BadAttributes counts hidden attributes in upstream answers too
	// malformed to re-encrypt for the NAS, left out of the relayed reply.
	BadAttributes int64 `json:"bad_attributes"`
	// Events counts events handed to the Recorder (auth.accept,
	// auth.reject, upstream timeouts as log); EventErrors those refused or
	// not stored.
	Events      int64 `json:"events"`
	EventErrors int64 `json:"event_errors"`
	// AccountingForwarded counts Accounting-Requests an upstream
	// acknowledged; AccountingFailed those none did (the NAS retransmits).
	AccountingForwarded int64 `json:"accounting_forwarded"`
	AccountingFailed    int64 `json:"accounting_failed"`
	// Dropped counts Access-Requests left unanswered, by reason (the Drop*
	// constants; every reason present). An upstream timeout is
	// upstream_failed.
	Dropped map[string]int64 `json:"dropped"`
	// DuplicateEntries is the size of the reply cache (a gauge).
	DuplicateEntries int `json:"duplicate_entries"`
	// NAS has the counters of every configured client by name; Acked
	// counts the replies relayed to it.
	NAS map[string]NASStats `json:"nas"`
	// Upstreams are in configuration order.
	Upstreams []UpstreamStats `json:"upstreams"`
}

// UpstreamStats are one upstream's counters, per port (nil when the port is
// not used).
type UpstreamStats struct {
	Name string     `json:"name"`
	Auth *PoolStats `json:"auth,omitempty"`
	Acct *PoolStats `json:"acct,omitempty"`
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() ProxyStats {
	s := p.stats.snapshot()
	out := ProxyStats{
		Received:            s.Received,
		Forwarded:           p.pstats.forwarded.Load(),
		Replies:             map[string]int64{},
		DuplicatesAnswered:  s.DuplicatesAnswered,
		StatusServer:        s.StatusServer,
		WriteErrors:         s.WriteErrors,
		BadAttributes:       s.BadAttributes,
		Events:              p.pstats.events.Load(),
		EventErrors:         p.pstats.eventErrors.Load(),
		AccountingForwarded: p.pstats.acctForwarded.Load(),
		AccountingFailed:    p.pstats.acctFailed.Load(),
		Dropped:             s.Dropped,
		DuplicateEntries:    p.dups.len(),
		NAS:                 s.NAS,
	}
	for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge} {
		out.Replies[code.String()] = p.pstats.replies[code].Load()
	}
	now := time.Now()
	for _, u := range p.ups {
		out.Upstreams = append(out.Upstreams, UpstreamStats{Name: u.name, Auth: u.auth.snapshot(now), Acct: u.acct.snapshot(now)})
	}
	return out
}
