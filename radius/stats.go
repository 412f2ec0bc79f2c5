package radius

import (
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// Reasons a packet is dropped without an answer, as they appear in
// Stats.Dropped (and later as a Prometheus label).
const (
	DropUnknownClient     = "unknown_client"     // source matches no configured NAS
	DropMalformed         = "malformed"          // not a RADIUS packet, bad attributes, no Acct-Status-Type
	DropBadAuthenticator  = "bad_authenticator"  // Request Authenticator or Message-Authenticator did not verify: wrong secret
	DropUnsupportedCode   = "unsupported_code"   // Access-Request, CoA… sent to the accounting port
	DropDuplicateInflight = "duplicate_inflight" // retransmission of a request still being committed
	DropStoreError        = "store_error"        // the store failed; the NAS will retransmit
	DropRejected          = "rejected"           // the Recorder refused the event (invalid, or stopping)

	// DropUpstreamFailed: no upstream gave a usable answer. For the Proxy,
	// an Access-Request nobody answered (timeouts, or replies that did not
	// verify); for a forwarding Listener, a record stored but not
	// acknowledged upstream (its retransmission is forwarded, not stored,
	// again).
	DropUpstreamFailed = "upstream_failed"
	// The Proxy's own reasons.
	DropMissingMessageAuthenticator = "missing_message_authenticator" // Access-Request without one from a NAS that must send it (BlastRADIUS)
	DropOverload                    = "overload"                      // more requests in flight than ProxyOptions.MaxInFlight
)

type dropReason uint8

const (
	dropUnknownClient dropReason = iota
	dropMalformed
	dropBadAuthenticator
	dropUnsupportedCode
	dropDuplicateInflight
	dropStoreError
	dropRejected
	dropUpstreamFailed
	dropMissingMessageAuthenticator
	dropOverload
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropUnknownClient, DropMalformed, DropBadAuthenticator, DropUnsupportedCode,
	DropDuplicateInflight, DropStoreError, DropRejected,
	DropUpstreamFailed, DropMissingMessageAuthenticator, DropOverload,
}

// Stats is a snapshot of the Listener's counters. Every counter only grows
// (across SetClients too), so they export directly as Prometheus counters.
type Stats struct {
	Received           int64 `json:"received"`            // datagrams read
	Recorded           int64 `json:"recorded"`            // events handed to the Recorder
	Acked              int64 `json:"acked"`               // Accounting-Responses sent after commit
	DuplicatesAnswered int64 `json:"duplicates_answered"` // retransmissions answered again from the cache
	StatusServer       int64 `json:"status_server"`       // Status-Server requests answered
	BadAttributes      int64 `json:"bad_attributes"`      // malformed attributes left out of stored events
	WriteErrors        int64 `json:"write_errors"`        // answers the socket refused
	// With Options.Forward: records the upstream acknowledged (each is
	// then acked to the NAS), and retransmissions of stored records that
	// were forwarded again without being stored again.
	Forwarded   int64 `json:"forwarded"`
	Reforwarded int64 `json:"reforwarded"`
	// Dropped counts unanswered packets by reason (the Drop* constants);
	// every reason is present, zero or not, so label sets stay stable.
	Dropped map[string]int64 `json:"dropped"`
	// DuplicateEntries is the current size of the duplicate cache (a gauge).
	DuplicateEntries int `json:"duplicate_entries"`
	// NAS has the counters of every client configured since start, by name.
	NAS map[string]NASStats `json:"nas"`
	// AckLatency (Listener only) times each Accounting-Response from the
	// request's arrival, commit included: cumulative buckets in seconds.
	AckLatency Histogram `json:"ack_latency"`
}

// NASStats are the counters of one configured client.
type NASStats struct {
	// Packets counts datagrams from the NAS by RADIUS code name
	// ("Accounting-Request", "Status-Server"…), verified or not.
	Packets map[string]int64 `json:"packets"`
	// Acked counts the answers sent to the NAS: Accounting-Responses from
	// the Listener, relayed replies from the Proxy.
	Acked int64 `json:"acked"`
	// Dropped counts the NAS's unanswered packets by reason (non-zero only).
	Dropped map[string]int64 `json:"dropped,omitempty"`
	// LastPacket is when the NAS last sent a datagram, verified or not;
	// LastAcked when it was last answered. A NAS that still sends but is
	// no longer answered has the wrong secret, or the store is failing.
	LastPacket time.Time `json:"last_packet,omitzero"`
	LastAcked  time.Time `json:"last_acked,omitzero"`
}

// counters are the Listener's live counters.
type counters struct {
	received, recorded, acked, dupAnswered, statusServer, badAttrs, writeErrs atomic.Int64
	forwarded, reforwarded                                                    atomic.Int64
	dropped                                                                   [numDropReasons]atomic.Int64

	mu  sync.Mutex
	nas map[string]*nasCounters
}

type nasCounters struct {
	packets [256]atomic.Int64 // by code: 2 KiB per NAS buys lock-free counting
	acked   atomic.Int64
	dropped [numDropReasons]atomic.Int64
	// Unix nanoseconds, 0 for never.
	lastPacket, lastAcked atomic.Int64
}

// ack counts an answer sent to the NAS.
func (n *nasCounters) ack(now time.Time) {
	n.acked.Add(1)
	n.lastAcked.Store(now.UnixNano())
}

func unixNanos(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// forNAS returns the counters of the named client, creating them once.
func (c *counters) forNAS(name string) *nasCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nas == nil {
		c.nas = make(map[string]*nasCounters)
	}
	n := c.nas[name]
	if n == nil {
		n = &nasCounters{}
		c.nas[name] = n
	}
	return n
}

func (c *counters) drop(r dropReason, cl *client) {
	c.dropped[r].Add(1)
	if cl != nil {
		cl.stats.dropped[r].Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Received:           c.received.Load(),
		Recorded:           c.recorded.Load(),
		Acked:              c.acked.Load(),
		DuplicatesAnswered: c.dupAnswered.Load(),
		StatusServer:       c.statusServer.Load(),
		BadAttributes:      c.badAttrs.Load(),
		WriteErrors:        c.writeErrs.Load(),
		Forwarded:          c.forwarded.Load(),
		Reforwarded:        c.reforwarded.Load(),
		Dropped:            make(map[string]int64, numDropReasons),
	}
	for i := range c.dropped {
		s.Dropped[dropNames[i]] = c.dropped[i].Load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.NAS = make(map[string]NASStats, len(c.nas))
	for name, n := range c.nas {
		ns := NASStats{Packets: map[string]int64{}, Acked: n.acked.Load(),
			LastPacket: unixNanos(n.lastPacket.Load()), LastAcked: unixNanos(n.lastAcked.Load())}
		for code := range n.packets {
			if v := n.packets[code].Load(); v > 0 {
				ns.Packets[radius.Code(code).String()] = v
			}
		}
		for i := range n.dropped {
			if v := n.dropped[i].Load(); v > 0 {
				if ns.Dropped == nil {
					ns.Dropped = map[string]int64{}
				}
				ns.Dropped[dropNames[i]] = v
			}
		}
		s.NAS[name] = ns
	}
	return s
}
