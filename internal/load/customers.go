package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"authwatch/radius/radiustest"
)

// Kind is the Acct-Status-Type of a generated request.
type Kind int

// The kinds generated.
const (
	Start Kind = iota
	Interim
	Stop
	numKinds
)

var kindNames = [numKinds]string{"start", "interim", "stop"}

func (k Kind) String() string { return kindNames[k] }

// interimInterval is the simulated Acct-Interim-Interval: each interim adds
// it to Acct-Session-Time, which makes (session, session time) unique per
// request and lets a websocket event be matched to the packet it came from.
const interimInterval = 300

// customer is one login and its PPPoE session as its NAS sees it.
type customer struct {
	login    string
	nas      int
	mac      string
	ip       netip.Addr
	portID   string
	online   bool
	busy     bool  // a request of this customer is in flight
	pos      int32 // index in the offline or online list
	session  uint64
	interims uint32
	in, out  uint64 // octet counters of the open session
}

// customers hands out customers in the state a drawn kind needs, one request
// per customer at a time, so that each customer's Start, Interim-Updates and
// Stop go out in order like a real NAS's.
type customers struct {
	mu      sync.Mutex
	free    *sync.Cond
	all     []customer
	offline []int32 // not busy, no session
	online  []int32 // not busy, session open
	rng     *rand.Rand
	mix     Mix
	next    uint64 // next session number
	nasIPs  []netip.Addr
	nasIDs  []string
	static  radius.Attributes
	stopped bool

	preopened int // sessions open when the run started
}

func newCustomers(c Config) *customers {
	p := &customers{
		all: make([]customer, c.Customers), rng: rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)),
		mix: c.Mix,
	}
	p.free = sync.NewCond(&p.mu)
	// Session numbers start high and random so that runs against the same
	// server never reuse a session id.
	p.next = p.rng.Uint64()>>8 | 1<<52
	for i := range c.NAS {
		p.nasIPs = append(p.nasIPs, netip.AddrFrom4([4]byte{10, 255, byte(i >> 8), byte(i + 1)}))
		p.nasIDs = append(p.nasIDs, nasName(i))
	}
	// The run joins a NAS that has been up for hours: as many customers are
	// online as the mix keeps online at steady state, their sessions opened
	// before the run (so their first Interim-Update or Stop may be the first
	// the server hears of them). Otherwise the first Starts would be spread
	// over every customer while the Interim-Updates hammered the few online.
	online := (c.Mix.Interim + c.Mix.Stop) / c.Mix.total()
	for i := range p.all {
		cu := &p.all[i]
		cu.login = c.LoginPrefix + fmt.Sprintf("%06d", i+1)
		cu.nas = i % c.NAS
		cu.mac = fmt.Sprintf("02:4C:%02X:%02X:%02X:%02X", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
		cu.ip = netip.AddrFrom4([4]byte{100, 64 | byte(i>>16)&0x3f, byte(i >> 8), byte(i)})
		cu.portID = "vlan" + strconv.Itoa(100+i%50)
		list := &p.offline
		if p.rng.Float64() < online {
			cu.online, list = true, &p.online
			cu.session = p.next
			p.next++
			cu.interims = uint32(p.rng.IntN(288)) // up to a day old
			cu.in = uint64(cu.interims) * (1e6 + p.rng.Uint64N(5e8))
			cu.out = uint64(cu.interims) * (1e7 + p.rng.Uint64N(5e9))
		}
		cu.pos = int32(len(*list))
		*list = append(*list, int32(i))
	}
	p.preopened = len(p.online)
	// What a PPPoE concentrator sends with every accounting request.
	p.static = radius.Attributes{
		{Type: rfc2865.ServiceType_Type, Attribute: radius.NewInteger(uint32(rfc2865.ServiceType_Value_FramedUser))},
		{Type: rfc2865.FramedProtocol_Type, Attribute: radius.NewInteger(uint32(rfc2865.FramedProtocol_Value_PPP))},
		{Type: rfc2865.NASPortType_Type, Attribute: radius.NewInteger(uint32(rfc2865.NASPortType_Value_Ethernet))},
		{Type: rfc2866.AcctAuthentic_Type, Attribute: radius.NewInteger(uint32(rfc2866.AcctAuthentic_Value_RADIUS))},
	}
	return p
}

func nasName(i int) string { return "load-nas-" + strconv.Itoa(i+1) }

// request is one Accounting-Request to send.
type request struct {
	cust    int
	kind    Kind
	nas     int
	session uint64
	stime   uint32 // Acct-Session-Time
	packet  *radius.Packet
}

// stop wakes every goroutine waiting for a free customer; take then fails.
func (p *customers) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.free.Broadcast()
}

// take draws a kind from the mix and a free customer in the state it needs,
// marks the customer busy and builds the request. It waits while every
// customer is busy, and returns false once stop was called or ctx ended.
func (p *customers) take(ctx context.Context, secret []byte) (request, bool) {
	p.mu.Lock()
	for len(p.offline) == 0 && len(p.online) == 0 && !p.stopped && ctx.Err() == nil {
		p.free.Wait()
	}
	if p.stopped || ctx.Err() != nil {
		p.mu.Unlock()
		return request{}, false
	}
	kind := p.draw()
	var i int32
	switch {
	case kind == Start && len(p.offline) > 0, len(p.online) == 0:
		kind = Start
		i = p.remove(&p.offline, p.rng.IntN(len(p.offline)))
	default:
		if kind == Start {
			kind = Interim // nobody offline: the NAS reports on open sessions
		}
		i = p.remove(&p.online, p.rng.IntN(len(p.online)))
	}
	cu := &p.all[i]
	cu.busy = true
	r := request{cust: int(i), kind: kind, nas: cu.nas}
	var (
		status rfc2866.AcctStatusType
		cause  rfc2866.AcctTerminateCause
	)
	switch kind {
	case Start:
		cu.session, cu.interims, cu.in, cu.out = p.next, 0, 0, 0
		p.next++
		status = rfc2866.AcctStatusType_Value_Start
	case Interim:
		cu.interims++
		cu.in += 1e6 + p.rng.Uint64N(5e8)
		cu.out += 1e7 + p.rng.Uint64N(5e9)
		r.stime = cu.interims * interimInterval
		status = rfc2866.AcctStatusType_Value_InterimUpdate
	case Stop:
		cu.in += p.rng.Uint64N(1e8)
		cu.out += p.rng.Uint64N(1e9)
		r.stime = cu.interims*interimInterval + interimInterval/2
		status = rfc2866.AcctStatusType_Value_Stop
		cause = rfc2866.AcctTerminateCause_Value_UserRequest
		if p.rng.IntN(3) == 0 {
			cause = rfc2866.AcctTerminateCause_Value_LostCarrier
		}
	}
	r.session = cu.session
	a := radiustest.Acct{
		Status:         status,
		User:           cu.login,
		SessionID:      strconv.FormatUint(cu.session, 16),
		MAC:            cu.mac,
		IP:             cu.ip,
		NASIP:          p.nasIPs[cu.nas],
		NASPortID:      cu.portID,
		Service:        "pppoe-load",
		InputOctets:    cu.in,
		OutputOctets:   cu.out,
		InputPackets:   uint32(cu.in / 1000),
		OutputPackets:  uint32(cu.out / 1200),
		SessionTime:    r.stime,
		TerminateCause: cause,
		EventTime:      time.Now(),
		Extra:          p.static,
	}
	p.mu.Unlock()

	pk, err := a.Packet(secret)
	if err != nil {
		// Every field above is within bounds; this is a bug.
		panic(fmt.Sprintf("load: build request: %v", err))
	}
	pk.Add(rfc2865.NASIdentifier_Type, radius.Attribute(p.nasIDs[cu.nas]))
	r.packet = pk
	return r, true
}

// draw picks a kind by the mix's weights. p.mu is held.
func (p *customers) draw() Kind {
	x := p.rng.Float64() * p.mix.total()
	switch {
	case x < p.mix.Start:
		return Start
	case x < p.mix.Start+p.mix.Interim:
		return Interim
	}
	return Stop
}

// remove takes the customer at position j out of list and returns it.
func (p *customers) remove(list *[]int32, j int) int32 {
	l := *list
	i := l[j]
	last := l[len(l)-1]
	l[j] = last
	p.all[last].pos = int32(j)
	*list = l[:len(l)-1]
	return i
}

// release puts the customer of r back, in the state its request left it:
// the session exists on the NAS whatever became of its accounting.
func (p *customers) release(r request) {
	p.mu.Lock()
	cu := &p.all[r.cust]
	cu.busy = false
	cu.online = r.kind != Stop
	list := &p.offline
	if cu.online {
		list = &p.online
	}
	cu.pos = int32(len(*list))
	*list = append(*list, int32(r.cust))
	p.mu.Unlock()
	p.free.Signal()
}

// openSessions is the number of customers with a session open.
func (p *customers) openSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := range p.all {
		if p.all[i].online {
			n++
		}
	}
	return n
}
