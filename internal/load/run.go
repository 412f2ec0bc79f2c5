package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// runner is one run in progress.
type runner struct {
	cfg  Config
	nas  []*nasConn
	pool *customers
	ws   *wsWatch

	start    time.Time
	issueEnd atomic.Int64 // ns after start when the last request was issued

	issued   atomic.Int64
	sent     [numKinds]atomic.Int64
	acked    atomic.Int64
	retrans  atomic.Int64
	lost     atomic.Int64
	aborted  atomic.Int64
	inflight atomic.Int64
	lastAck  atomic.Int64 // ns after start of the latest answer
	errs     atomic.Int64
	firstErr atomic.Pointer[error]

	stray, dupAnsw, sendErr atomic.Int64

	ack Histogram // first transmission → answer
	lag Histogram // open loop: scheduled time → first transmission
}

// Run sends accounting load as cfg says, waits for the requests in flight
// (up to Tries × Retry each) and for the websocket events (up to WS.Grace),
// and reports. When ctx ends it stops at once: requests in flight are
// counted as aborted, not lost.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	r := &runner{cfg: cfg, pool: newCustomers(cfg)}
	var readers sync.WaitGroup
	defer func() {
		for _, n := range r.nas {
			n.close()
		}
		readers.Wait()
	}()
	for i := range cfg.NAS {
		var src netip.Addr
		if len(cfg.Sources) > 0 {
			src = cfg.Sources[i%len(cfg.Sources)]
		}
		n, err := dialNAS(nasName(i), cfg.Server, src, cfg.Secret, cfg.Retry, cfg.Tries, &r.stray, &r.dupAnsw, &r.sendErr)
		if err != nil {
			return nil, err
		}
		r.nas = append(r.nas, n)
		readers.Go(n.read)
	}
	if cfg.WS.URL != "" && cfg.WS.Logins+cfg.WS.Firehose > 0 {
		logins := make([]string, cfg.WS.Logins)
		for i := range logins {
			logins[i] = r.pool.all[i].login
		}
		if r.ws, err = dialWS(ctx, cfg.WS, logins); err != nil {
			return nil, err
		}
		defer r.ws.close()
	}
	stopWaiters := context.AfterFunc(ctx, r.pool.stop)
	defer stopWaiters()

	r.start = time.Now()
	progressDone := r.progress()
	if cfg.Rate > 0 {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	end := time.Now()
	progressDone()
	if r.ws != nil && ctx.Err() == nil {
		r.ws.wait(cfg.WS.Grace)
	}
	rep := r.report(end)
	if p := r.firstErr.Load(); p != nil {
		return rep, *p
	}
	return rep, nil
}

// admit reports whether another request may be issued.
func (r *runner) admit() bool {
	if r.cfg.Requests > 0 && r.issued.Add(1) > r.cfg.Requests {
		return false
	}
	if r.cfg.Duration > 0 && time.Since(r.start) >= r.cfg.Duration {
		return false
	}
	r.issueEnd.Store(int64(time.Since(r.start)))
	return true
}

func (r *runner) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && r.admit() {
				r.one(ctx, time.Time{})
			}
		})
	}
	wg.Wait()
}

// openLoop issues requests on a fixed schedule, whatever the answers. When
// MaxInFlight requests are unanswered it waits, and the requests due
// meanwhile go out late: the schedule lag says by how much.
func (r *runner) openLoop(ctx context.Context) {
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	perReq := float64(time.Second) / r.cfg.Rate
	for i := int64(0); ; i++ {
		offset := time.Duration(float64(i) * perReq)
		if r.cfg.Duration > 0 && offset >= r.cfg.Duration {
			return
		}
		if r.cfg.Requests > 0 && i >= r.cfg.Requests {
			return
		}
		due := r.start.Add(offset)
		// Sleep only for gaps the timer can honour; shorter ones are
		// sent a little early, in small bursts.
		if d := time.Until(due); d > 500*time.Microsecond {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r.issueEnd.Store(int64(time.Since(r.start)))
		wg.Go(func() {
			defer func() { <-sem }()
			r.one(ctx, due)
		})
	}
}

// one sends one request and counts its fate.
func (r *runner) one(ctx context.Context, due time.Time) {
	req, ok := r.pool.take(ctx, r.cfg.Secret)
	if !ok {
		return
	}
	defer r.pool.release(req)
	r.inflight.Add(1)
	defer r.inflight.Add(-1)
	o, err := r.nas[req.nas].exchange(ctx, req.packet, func(t time.Time) {
		r.sent[req.kind].Add(1)
		if !due.IsZero() {
			r.lag.Record(t.Sub(due))
		}
		if r.ws != nil {
			r.ws.expect(req, t)
		}
	})
	if err != nil {
		r.errs.Add(1)
		r.firstErr.CompareAndSwap(nil, &err)
		return
	}
	if o.tries > 1 {
		r.retrans.Add(int64(o.tries - 1))
	}
	switch {
	case o.acked:
		r.acked.Add(1)
		r.ack.Record(o.latency)
		at := int64(time.Since(r.start))
		for {
			last := r.lastAck.Load()
			if at <= last || r.lastAck.CompareAndSwap(last, at) {
				break
			}
		}
	case o.aborted:
		if o.tries > 0 {
			r.aborted.Add(1)
		}
	default:
		r.lost.Add(1)
	}
}

func (r *runner) sentTotal() int64 {
	var n int64
	for i := range r.sent {
		n += r.sent[i].Load()
	}
	return n
}

// progress writes a line every cfg.Progress; the function returned stops it.
func (r *runner) progress() func() {
	if r.cfg.Progress <= 0 || r.cfg.ProgressTo == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.Progress)
		defer t.Stop()
		var prevAcked int64
		prev := r.start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				acked := r.acked.Load()
				rate := float64(acked-prevAcked) / now.Sub(prev).Seconds()
				prevAcked, prev = acked, now
				fmt.Fprintf(r.cfg.ProgressTo, "%6.1fs  sent %d  acked %d (%.0f/s)  retransmitted %d  lost %d  in flight %d\n",
					now.Sub(r.start).Seconds(), r.sentTotal(), acked, rate, r.retrans.Load(), r.lost.Load(), r.inflight.Load())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// report gathers the counters once everything has settled.
func (r *runner) report(end time.Time) *Report {
	c := r.cfg
	rep := &Report{
		Server: c.Server, NAS: c.NAS, Customers: c.Customers, Mix: c.Mix.String(),
		Retry: c.Retry.String(), Tries: c.Tries, Seed: c.Seed,
		Sent: r.sentTotal(), Acked: r.acked.Load(), Retransmitted: r.retrans.Load(),
		Lost: r.lost.Load(), Aborted: r.aborted.Load(), Errors: r.errs.Load(),
		StrayAnswers: r.stray.Load(), DuplicateAnswers: r.dupAnsw.Load(), SendErrors: r.sendErr.Load(),
		SentByKind:   map[string]int64{},
		Elapsed:      end.Sub(r.start).Seconds(),
		AckLatency:   r.ack.Summary(),
		OpenSessions: r.pool.openSessions(),
		OpenAtStart:  r.pool.preopened,
	}
	if c.Rate > 0 {
		rep.Mode, rep.Rate, rep.MaxInFlight = "open", c.Rate, c.MaxInFlight
		lag := r.lag.Summary()
		rep.ScheduleLag = &lag
	} else {
		rep.Mode, rep.Concurrency = "closed", c.Concurrency
	}
	if c.Duration > 0 {
		rep.Duration = c.Duration.String()
	}
	rep.Requests = c.Requests
	for k := range r.sent {
		rep.SentByKind[Kind(k).String()] = r.sent[k].Load()
	}
	if s := time.Duration(r.issueEnd.Load()).Seconds(); s > 0 {
		rep.SentPerSec = float64(rep.Sent) / s
	}
	if s := time.Duration(r.lastAck.Load()).Seconds(); s > 0 {
		rep.AckedPerSec = float64(rep.Acked) / s
	}
	if r.ws != nil {
		rep.WS = r.ws.report()
	}
	return rep
}

// Main runs the load described by cfg and writes its report to stdout, as
// a table or (asJSON) as one JSON object. Progress lines go to stderr. It is
// what `authwatch load` calls.
func Main(ctx context.Context, cfg Config, asJSON bool, stdout, stderr io.Writer) error {
	if cfg.ProgressTo == nil {
		cfg.ProgressTo = stderr
	}
	rep, err := Run(ctx, cfg)
	if rep == nil {
		return err
	}
	if asJSON {
		if werr := rep.WriteJSON(stdout); werr != nil {
			return errors.Join(err, werr)
		}
	} else {
		rep.WriteText(stdout)
	}
	return err
}
