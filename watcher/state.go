package watcher

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Session is one open PPPoE session as the customer's state knows it.
type Session struct {
	NAS             string    `json:"nas"`
	NASIP           string    `json:"nas_ip,omitempty"` // NAS-IP-Address as the NAS reported it
	ID              string    `json:"session_id"`
	Source          string    `json:"source"`
	MAC             string    `json:"mac,omitempty"`
	IP              string    `json:"ip,omitempty"`
	IPv6Prefix      string    `json:"ipv6_prefix,omitempty"`
	DelegatedPrefix string    `json:"delegated_prefix,omitempty"`
	IPv6Address     string    `json:"ipv6_address,omitempty"`
	NASPortID       string    `json:"nas_port_id,omitempty"`
	Start           time.Time `json:"start"`
	Updated         time.Time `json:"updated"`
	InputOctets     uint64    `json:"input_octets,omitempty"`
	OutputOctets    uint64    `json:"output_octets,omitempty"`
}

// Auth is the last authentication result seen for a login.
type Auth struct {
	At       time.Time `json:"at"`
	Accepted bool      `json:"accepted"`
	Reason   string    `json:"reason,omitempty"`
	NAS      string    `json:"nas,omitempty"`
	MAC      string    `json:"mac,omitempty"`
	Source   string    `json:"source"`
}

// Stop is how the last session of a login ended.
type Stop struct {
	At        time.Time `json:"at"`
	Reason    string    `json:"reason,omitempty"`
	NAS       string    `json:"nas,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
}

// HTTPCheck is the last CPE probe result for a login.
type HTTPCheck struct {
	At     time.Time `json:"at"`
	Up     bool      `json:"up"`
	Reason string    `json:"reason,omitempty"`
	URL    string    `json:"url,omitempty"`
	Title  string    `json:"title,omitempty"`
}

// Customer is the current state of one login, derived from its events.
type Customer struct {
	Login    string    `json:"login"`
	Online   bool      `json:"online"`
	Since    time.Time `json:"since,omitzero"` // online since, or offline since
	Sessions []Session `json:"sessions"`
	// IPv6 lists the open sessions' IPv6 addresses and prefixes (framed
	// and delegated), in canonical text.
	IPv6     []string   `json:"ipv6"`
	LastAuth *Auth      `json:"last_auth,omitempty"`
	LastStop *Stop      `json:"last_stop,omitempty"`
	LastHTTP *HTTPCheck `json:"last_http,omitempty"`
	// Plan is the speed the last Access-Accept gave, or the max-limit of
	// the session's RouterOS simple queue, as the provider wrote it: in
	// RouterOS order, upload/download of the customer ("150M/300M").
	Plan string `json:"plan,omitempty"`
	// Blocked and Reduced say the last Access-Accept, or the session's
	// router, put the customer in the provider's block (non-payment) or a
	// reduced plan, and by what.
	Blocked  *Block    `json:"blocked,omitempty"`
	Reduced  *Block    `json:"reduced,omitempty"`
	LastSeq  int64     `json:"last_seq"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Block is why a customer is blocked or reduced, and since when.
type Block struct {
	By    string    `json:"by"` // "address-list bloqueados", "pool bloqueio", "rate-limit 1M/1M"
	Since time.Time `json:"since"`
	// Source is who said so: the RADIUS source that saw the accept, or
	// "routeros:<name>" for a router's address-list or queue.
	Source string `json:"source,omitempty"`
}

// BlockPolicy names what, in an Access-Accept, means "blocked" or "reduced":
// the [blocked] section of the configuration.
type BlockPolicy struct {
	AddressLists      []string // Mikrotik-Address-List values
	Pools             []string // Framed-Pool values
	ReducedRateLimits []string // Mikrotik-Rate-Limit values
}

// The reply attributes an Access-Accept event carries in Detail.Attributes,
// by the names the RADIUS sources give them.
const (
	attrRateLimit   = "26:14988:8"  // Mikrotik-Rate-Limit
	attrAddressList = "26:14988:19" // Mikrotik-Address-List
	attrFramedPool  = "Framed-Pool"
	attrWISPrDown   = "26:14122:8" // WISPr-Bandwidth-Max-Down, bit/s
	attrWISPrUp     = "26:14122:7" // WISPr-Bandwidth-Max-Up, bit/s
)

type sessionKey struct{ nas, id string }

type customer struct {
	Customer
	open map[sessionKey]*Session
	// alias maps the key one source uses for an open session to the key it
	// is kept under, when two sources (RADIUS accounting, the RouterOS API)
	// report one PPPoE session under different ids. Not checkpointed: the
	// next update re-links them.
	alias map[sessionKey]sessionKey
}

// resolve returns the key an open session is kept under.
func (c *customer) resolve(k sessionKey) sessionKey {
	if p, ok := c.alias[k]; ok {
		return p
	}
	return k
}

// link merges the session kept under k into another open session of the
// same NAS with the same MAC and IP (both known) reported by another source:
// one PPPoE session seen by RADIUS accounting and the RouterOS API. The older
// one is kept and returned; k becomes an alias of it.
func (c *customer) link(k sessionKey) *Session {
	ss := c.open[k]
	if ss == nil || ss.MAC == "" || ss.IP == "" {
		return nil
	}
	for pk, other := range c.open {
		// Same source means two sessions, however alike: a router that
		// redials with a fixed IP before the old session is closed.
		if pk == k || pk.nas != k.nas || other.Source == ss.Source || other.MAC != ss.MAC || other.IP != ss.IP {
			continue
		}
		if other.Start.After(ss.Start) {
			other.Start = ss.Start
		}
		other.Updated = maxTime(other.Updated, ss.Updated)
		other.InputOctets, other.OutputOctets = max(other.InputOctets, ss.InputOctets), max(other.OutputOctets, ss.OutputOctets)
		other.NASIP = first(other.NASIP, ss.NASIP)
		delete(c.open, k)
		if c.alias == nil {
			c.alias = make(map[sessionKey]sessionKey)
		}
		for a, p := range c.alias {
			if p == k {
				c.alias[a] = pk
			}
		}
		c.alias[k] = pk
		return other
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// State is the per-login state of every customer seen, kept in memory and
// rebuilt from the store at start. It is safe for concurrent use.
type State struct {
	mu        sync.RWMutex
	customers map[string]*customer
	seq       int64 // highest seq applied
	policy    BlockPolicy
}

// SetBlockPolicy sets what counts as blocked or reduced in later accepts.
func (s *State) SetBlockPolicy(p BlockPolicy) {
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
}

// NewState returns an empty State.
func NewState() *State {
	return &State{customers: make(map[string]*customer)}
}

// Seq returns the highest event seq applied to the state.
func (s *State) Seq() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Customer returns a copy of the state of login, and whether it was ever seen.
func (s *State) Customer(login string) (Customer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.customers[login]
	if !ok {
		return Customer{Login: login, Sessions: []Session{}, IPv6: []string{}}, false
	}
	return c.snapshot(), true
}

// FindAddress returns the logins with an open session that holds addr: its
// IPv4 or IPv6 address, or an IPv6 prefix (framed or delegated) containing
// it. With a prefix instead of an address, it matches sessions whose prefix
// is that one or lies inside it, or contains it. Customers are found by an
// address taken from a complaint or an abuse report.
func (s *State) FindAddress(q netip.Prefix) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for login, c := range s.customers {
		for _, ss := range c.open {
			if sessionHas(ss, q) {
				out = append(out, login)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// FindMAC returns the logins with an open session from mac (normalised).
func (s *State) FindMAC(mac string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for login, c := range s.customers {
		for _, ss := range c.open {
			if ss.MAC == mac {
				out = append(out, login)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func sessionHas(ss *Session, q netip.Prefix) bool {
	for _, a := range []string{ss.IP, ss.IPv6Address} {
		if ip, err := netip.ParseAddr(a); err == nil && q.Contains(ip) {
			return true
		}
	}
	for _, p := range []string{ss.IPv6Prefix, ss.DelegatedPrefix} {
		if pre, err := netip.ParsePrefix(p); err == nil && pre.Overlaps(q) {
			return true
		}
	}
	return false
}

// SessionsOn returns the open sessions on one NAS, with their logins: what a
// source that reconnects to that NAS compares its own table with.
func (s *State) SessionsOn(nas string) (logins []string, sessions []Session) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for login, c := range s.customers {
		for k, ss := range c.open {
			if k.nas == nas {
				logins = append(logins, login)
				sessions = append(sessions, *ss)
			}
		}
	}
	return logins, sessions
}

// Stats summarises the state for the firehose and health pages.
type Stats struct {
	Customers int   `json:"customers"`
	Online    int   `json:"online"`
	Sessions  int   `json:"sessions"`
	Seq       int64 `json:"seq"`
}

// Stats counts customers and open sessions.
func (s *State) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Customers: len(s.customers), Seq: s.seq}
	for _, c := range s.customers {
		if len(c.open) > 0 {
			st.Online++
			st.Sessions += len(c.open)
		}
	}
	return st
}

// Apply folds one committed event into the state and returns the logins whose
// state it changed: the event's own login and, for a NAS going down or coming
// back up, every login that had a session on that NAS.
func (s *State) Apply(ev Event) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Seq > s.seq {
		s.seq = ev.Seq
	}
	switch ev.Kind {
	case NASUp, NASDown:
		// Accounting-On/Off: every session the NAS had is gone (RFC 2866).
		return s.closeNAS(ev)
	}
	if ev.Login == "" {
		return nil
	}
	c := s.get(ev.Login)
	c.LastSeq = ev.Seq
	if ev.At.After(c.LastSeen) {
		c.LastSeen = ev.At
	}
	switch ev.Kind {
	case SessionStart, SessionUpdate:
		c.upsert(ev)
		if ev.Detail != nil && ev.Detail.RouterCheck != nil {
			c.routerChecked(ev, s.policy)
		}
	case SessionStop:
		c.stop(ev)
	case AuthAccept, AuthReject:
		c.LastAuth = &Auth{At: ev.At, Accepted: ev.Kind == AuthAccept, Reason: ev.Reason, NAS: ev.NAS, MAC: ev.MAC, Source: ev.Source}
		if ev.Kind == AuthAccept && ev.Detail != nil && len(ev.Detail.Attributes) > 0 {
			c.classify(ev, s.policy)
		}
	case HTTPUp, HTTPDown:
		h := &HTTPCheck{At: ev.At, Up: ev.Kind == HTTPUp, Reason: ev.Reason}
		if ev.Detail != nil {
			h.URL, h.Title = ev.Detail.URL, ev.Detail.HTTPTitle
		}
		c.LastHTTP = h
	}
	return []string{ev.Login}
}

// classify reads the plan and the block status from what the RADIUS server
// answered: an accept decides them for the session it opens.
func (c *customer) classify(ev Event, p BlockPolicy) {
	attrs := ev.Detail.Attributes
	if rl := attrs[attrRateLimit]; rl != "" {
		c.Plan = strings.Fields(rl)[0]
	} else if down, up := attrs[attrWISPrDown], attrs[attrWISPrUp]; down != "" || up != "" {
		// Written in Mikrotik-Rate-Limit's order (rx/tx from the router's
		// side: the customer's upload first), so one plan reads one way.
		c.Plan = bitrate(up) + "/" + bitrate(down)
	}
	block := func(cur *Block, by string) *Block {
		if by == "" {
			return nil
		}
		if cur != nil && cur.By == by {
			return cur
		}
		return &Block{By: by, Since: ev.At, Source: ev.Source}
	}
	var blockedBy, reducedBy string
	if l := attrs[attrAddressList]; l != "" && slices.Contains(p.AddressLists, l) {
		blockedBy = "address-list " + l
	} else if pool := attrs[attrFramedPool]; pool != "" && slices.Contains(p.Pools, pool) {
		blockedBy = "pool " + pool
	}
	if rl := attrs[attrRateLimit]; rl != "" && slices.Contains(p.ReducedRateLimits, strings.Fields(rl)[0]) {
		reducedBy = "rate-limit " + strings.Fields(rl)[0]
	}
	c.Blocked, c.Reduced = block(c.Blocked, blockedBy), block(c.Reduced, reducedBy)
}

// bitrate writes a WISPr bit/s value the way rate limits are written.
func bitrate(s string) string {
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case err != nil:
		return s
	case n >= 1e9 && n%1e9 == 0:
		return strconv.FormatUint(n/1e9, 10) + "G"
	case n >= 1e6 && n%1e6 == 0:
		return strconv.FormatUint(n/1e6, 10) + "M"
	case n >= 1e3 && n%1e3 == 0:
		return strconv.FormatUint(n/1e3, 10) + "k"
	}
	return s
}

func (s *State) get(login string) *customer {
	c, ok := s.customers[login]
	if !ok {
		c = &customer{Customer: Customer{Login: login}, open: make(map[sessionKey]*Session)}
		s.customers[login] = c
	}
	return c
}

func (s *State) closeNAS(ev Event) []string {
	var logins []string
	for login, c := range s.customers {
		closed := false
		for k := range c.open {
			if k.nas == ev.NAS {
				delete(c.open, k)
				closed = true
			}
		}
		for a, p := range c.alias {
			if p.nas == ev.NAS {
				delete(c.alias, a)
			}
		}
		if !closed {
			continue
		}
		logins = append(logins, login)
		c.LastSeq = ev.Seq
		if len(c.open) == 0 {
			c.Online, c.Since = false, ev.At
			c.forgetRouterBlocks()
		}
		c.LastStop = &Stop{At: ev.At, Reason: ev.Reason, NAS: ev.NAS}
	}
	slices.Sort(logins)
	return logins
}

func keyOf(ev Event) sessionKey {
	id := ev.SessionID
	if id == "" {
		// Without a session id the best we can do is one session per login per NAS.
		id = "login:" + ev.Login
	}
	return sessionKey{nas: ev.NAS, id: id}
}

func (c *customer) upsert(ev Event) {
	k := c.resolve(keyOf(ev))
	ss, ok := c.open[k]
	if !ok {
		ss = &Session{NAS: ev.NAS, ID: ev.SessionID, Source: ev.Source, Start: ev.At}
		if ev.Kind == SessionUpdate && ev.Detail != nil && ev.Detail.SessionTime > 0 {
			// An interim for a session we missed the start of knows its age.
			ss.Start = ev.At.Add(-time.Duration(ev.Detail.SessionTime) * time.Second)
		}
		c.open[k] = ss
	}
	ss.Updated = ev.At
	if ev.MAC != "" {
		ss.MAC = ev.MAC
	}
	if ev.IP != "" {
		ss.IP = ev.IP
	}
	if d := ev.Detail; d != nil {
		ss.InputOctets, ss.OutputOctets = max(ss.InputOctets, d.InputOctets), max(ss.OutputOctets, d.OutputOctets)
		ss.NASPortID = first(d.NASPortID, ss.NASPortID)
		ss.NASIP = first(d.NASIP, ss.NASIP)
		ss.IPv6Prefix = first(d.IPv6Prefix, ss.IPv6Prefix)
		ss.DelegatedPrefix = first(d.DelegatedPrefix, ss.DelegatedPrefix)
		ss.IPv6Address = first(d.IPv6Address, ss.IPv6Address)
	}
	if kept := c.link(k); kept != nil {
		ss = kept
	}
	if !c.Online {
		c.Online, c.Since = true, ss.Start
	}
}

func (c *customer) stop(ev Event) {
	k := c.resolve(keyOf(ev))
	delete(c.open, k)
	for a, p := range c.alias {
		if p == k || a == k {
			delete(c.alias, a)
		}
	}
	c.LastStop = &Stop{At: ev.At, Reason: ev.Reason, NAS: ev.NAS, SessionID: ev.SessionID}
	if len(c.open) == 0 {
		c.Online, c.Since = false, ev.At
		c.forgetRouterBlocks()
	}
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *customer) snapshot() Customer {
	out := c.Customer
	out.Sessions = make([]Session, 0, len(c.open))
	out.IPv6 = []string{}
	for _, ss := range c.open {
		out.Sessions = append(out.Sessions, *ss)
		for _, a := range []string{ss.IPv6Address, ss.IPv6Prefix, ss.DelegatedPrefix} {
			if a != "" && !slices.Contains(out.IPv6, a) {
				out.IPv6 = append(out.IPv6, a)
			}
		}
	}
	slices.Sort(out.IPv6)
	slices.SortFunc(out.Sessions, func(a, b Session) int {
		if n := a.Start.Compare(b.Start); n != 0 {
			return n
		}
		return strings.Compare(a.NAS+a.ID, b.NAS+b.ID)
	})
	if p := c.LastAuth; p != nil {
		v := *p
		out.LastAuth = &v
	}
	if p := c.LastStop; p != nil {
		v := *p
		out.LastStop = &v
	}
	if p := c.LastHTTP; p != nil {
		v := *p
		out.LastHTTP = &v
	}
	if p := c.Blocked; p != nil {
		v := *p
		out.Blocked = &v
	}
	if p := c.Reduced; p != nil {
		v := *p
		out.Reduced = &v
	}
	return out
}

// Checkpoint is a serialised State and the seq it reflects. The customers
// are split into parts of checkpointPart customers, each a gzipped JSON
// object {"customers": [...]}: neither saving nor loading then holds the
// whole text (36 MB at 100,000 sessions) in one piece, and a part is what
// the store keeps in one row.
type Checkpoint struct {
	Seq   int64
	Parts [][]byte
}

// checkpointPart is how many customers one checkpoint part holds: about
// 150 KiB of JSON, 20 KiB gzipped.
const checkpointPart = 500

// MarshalCheckpoint serialises the whole state, so that a restart need not
// replay events that retention may already have pruned. The state is copied
// under the read lock and serialised after it is released: appliers wait for
// the copy, not for the JSON and gzip.
func (s *State) MarshalCheckpoint() (Checkpoint, error) {
	s.mu.RLock()
	cp := Checkpoint{Seq: s.seq}
	all := make([]Customer, 0, len(s.customers))
	for _, c := range s.customers {
		all = append(all, c.snapshot())
	}
	s.mu.RUnlock()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // only fails on a bad level
	for chunk := range slices.Chunk(all, checkpointPart) {
		buf.Reset()
		zw.Reset(&buf)
		err := json.NewEncoder(zw).Encode(struct {
			Customers []Customer `json:"customers"`
		}{chunk})
		if err == nil {
			err = zw.Close()
		}
		if err != nil {
			return Checkpoint{}, fmt.Errorf("state checkpoint: %w", err)
		}
		clear(chunk) // let the copies go as their text is written
		cp.Parts = append(cp.Parts, bytes.Clone(buf.Bytes()))
	}
	return cp, nil
}

// RestoreCheckpoint replaces the state with one produced by MarshalCheckpoint.
func (s *State) RestoreCheckpoint(cp Checkpoint) error {
	r := newRestorer()
	for _, p := range cp.Parts {
		if err := r.add(p); err != nil {
			return err
		}
	}
	s.install(r, cp.Seq)
	return nil
}

// restorer rebuilds the customers from checkpoint parts, one part and one
// customer at a time: a decoded copy of 100,000 customers held at once,
// interleaved with the garbage of decoding, left the heap more than twice
// the size of the same state built from packets.
type restorer struct {
	customers map[string]*customer
	// A few NAS names and sources repeat across every session: decoded,
	// each would be its own copy.
	interned map[string]string
	zr       *gzip.Reader
}

func newRestorer() *restorer {
	return &restorer{customers: make(map[string]*customer), interned: make(map[string]string)}
}

func (r *restorer) intern(v string) string {
	if w, ok := r.interned[v]; ok {
		return w
	}
	r.interned[v] = v
	return v
}

// add decodes one part: gzipped JSON, or the plain JSON of a checkpoint
// saved whole by an earlier version ({"seq": …, "customers": […]}).
func (r *restorer) add(part []byte) error {
	var in io.Reader = bytes.NewReader(part)
	if len(part) >= 2 && part[0] == 0x1f && part[1] == 0x8b {
		var err error
		if r.zr == nil {
			r.zr, err = gzip.NewReader(in)
		} else {
			err = r.zr.Reset(in)
		}
		if err != nil {
			return fmt.Errorf("state checkpoint: %w", err)
		}
		in = r.zr
	}
	if err := r.decode(json.NewDecoder(in)); err != nil {
		return fmt.Errorf("state checkpoint: %w", err)
	}
	return nil
}

func (r *restorer) decode(dec *json.Decoder) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("not an object (%v)", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t != "customers" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return fmt.Errorf("customers: not an array (%v)", err)
		}
		for dec.More() {
			var cc Customer
			if err := dec.Decode(&cc); err != nil {
				return err
			}
			c := &customer{Customer: cc, open: make(map[sessionKey]*Session, len(cc.Sessions))}
			for j := range cc.Sessions {
				ss := cc.Sessions[j]
				ss.NAS, ss.Source = r.intern(ss.NAS), r.intern(ss.Source)
				c.open[sessionKey{nas: ss.NAS, id: sessionIDOr(ss, cc.Login)}] = &ss
			}
			// Derived on every snapshot: the decoded copies would only
			// take memory.
			c.Sessions, c.IPv6 = nil, nil
			r.customers[cc.Login] = c
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

// install makes the restored customers the state, as of seq.
func (s *State) install(r *restorer, seq int64) {
	s.mu.Lock()
	s.customers, s.seq = r.customers, seq
	s.mu.Unlock()
}

func sessionIDOr(ss Session, login string) string {
	if ss.ID == "" {
		return "login:" + login
	}
	return ss.ID
}
