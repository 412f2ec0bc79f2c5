package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"authwatch/internal/config"
	"authwatch/radius"
	"authwatch/watcher"
	"authwatch/watcher/frlog"
	"authwatch/watcher/frsql"
	"authwatch/watcher/probe"
	"authwatch/watcher/routeros"
	"authwatch/watcher/sqlstore"
	"authwatch/watcher/watch"
	"authwatch/webui"
	"authwatch/webui/auth"
)

// Daemon is authwatch with every part built and its sockets bound, ready to
// Run. Building binds the sockets, so that a port already in use is an error
// at start and the demo can print the addresses it got.
type Daemon struct {
	cfg   *config.Config
	log   *slog.Logger
	store watcher.Store
	state *watcher.State
	hub   *watcher.Hub
	rec   *watcher.Recorder

	radiusConn net.PacketConn
	radius     *radius.Listener
	proxyConn  net.PacketConn // nil unless [proxy] listen is set
	proxy      *radius.Proxy  // nil unless [proxy] has upstreams
	logs       *runSet[frlog.Config, *frlog.Source]
	sqls       *runSet[frsql.Config, *frsql.Source]
	routers    *runSet[config.RouterOS, *routeros.Source]
	// blockedLists are the [blocked] address-lists the routers ask about
	// (applyRouters).
	blockedLists []string
	watches      *watch.Manager
	httpLn       net.Listener
	web          *webui.Server
	auth         *auth.Service // accounts; nil in desk mode ([http] auth = false)
	shared       *shared       // PostgreSQL: several instances on one database (nil with SQLite)
	actions      disconnects   // "End session" (disconnect.go)
	cp           checkpoints   // the state checkpoint in the store
}

// checkpoints is what this instance knows of the state checkpoint in the
// store: the seq it saved or loaded last, and for /metrics, how the saves go.
type checkpoints struct {
	seq    atomic.Int64
	at     atomic.Int64 // unix seconds: the store held the state as of then
	bytes  atomic.Int64 // the last save's size
	took   atomic.Int64 // the last save's duration, ns
	errors atomic.Int64
}

// Serve loads the configuration at path and runs the daemon until ctx ends.
func Serve(ctx context.Context, path string, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log := NewLogger(cfg.Log, stderr)
	d, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("authwatch started", "version", Version(), "http", d.URL(), "radius", d.RADIUSAddr())
	// SIGHUP reloads the NAS list and the routers, as daemons next to a
	// BRAS are expected to.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.Reload(path)
			}
		}
	}()
	return d.Run(ctx)
}

// NewLogger returns the daemon's logger: text or JSON on w (stderr, which
// journald collects).
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// New opens the store, rebuilds the customers' state from it and binds the
// RADIUS and HTTP sockets.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (d *Daemon, err error) {
	d = &Daemon{cfg: cfg, log: log, state: watcher.NewState(), hub: watcher.NewHub(1024)}
	built := d // d is nil once an error is returned
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	st, err := sqlstore.Open(ctx, sqlstore.Options{Driver: cfg.Store.Driver, Path: cfg.Store.Path, Synchronous: cfg.Store.Synchronous, DSN: cfg.Store.DSN.Reveal(), Logger: log})
	if err != nil {
		return nil, err
	}
	d.store = st
	start := time.Now()
	cpSeq, err := watcher.Rebuild(ctx, d.store, d.state)
	if err != nil {
		return nil, fmt.Errorf("rebuild state from the store: %w", err)
	}
	d.cp.seq.Store(cpSeq)
	d.cp.at.Store(time.Now().Unix())
	// The checkpoint's text and the decoded copy are garbage now: hand the
	// memory back to the system instead of keeping it for a peak that came
	// once.
	debug.FreeOSMemory()
	stats := d.state.Stats()
	log.Info("state rebuilt from the store", "customers", stats.Customers, "online", stats.Online, "seq", stats.Seq, "took", time.Since(start).Round(time.Millisecond))
	if err := d.openShared(st); err != nil {
		return nil, err
	}
	d.state.SetBlockPolicy(blockPolicy(cfg.Blocked))
	d.rec = watcher.NewRecorder(d.store, d.state, d.hub, watcher.RecorderOptions{Logger: log, Follow: d.shared.follow()})

	var prober *probe.Prober
	if cfg.Probe.Enabled {
		prober = probe.New(probe.Config{Ports: cfg.Probe.Ports, Timeout: cfg.Probe.Timeout.D(),
			Allow: cfg.Probe.AllowPrefixes(), Source: cfg.Probe.SourceAddr()})
	}
	d.watches = watch.NewManager(watch.Options{
		Store: st, Events: st, State: d.state, Recorder: d.rec, Prober: prober, Timeout: cfg.Watch.Timeout.D(),
		Lead: d.shared.watchLead(), Unlead: d.shared.watchUnlead(), Shared: d.shared != nil,
		Outages: &watch.OutageDetector{Threshold: cfg.Outage.Sessions, Window: cfg.Outage.Window.D()},
		Notify: func(v watch.View) {
			d.hub.Notify(watcher.Notice{Type: "watch", Body: v}, []string{v.Login})
		},
		NotifyOutage: func(o watch.Outage, logins []string) {
			d.hub.Notify(watcher.Notice{Type: "outage", Body: o}, logins)
		},
		Logger: log,
	})
	d.rec.OnApplied(d.watches.Observe)
	if err := d.watches.Load(ctx); err != nil {
		return nil, err
	}

	d.routers = d.newRouters()
	d.applyRouters(cfg.RouterOS, cfg.Blocked.AddressLists)

	d.radiusConn, err = net.ListenPacket("udp", cfg.RADIUS.Listen)
	if err != nil {
		return nil, fmt.Errorf("radius: listen %s: %w", cfg.RADIUS.Listen, err)
	}
	acctOpts := radius.Options{Workers: cfg.RADIUS.Workers, DuplicateWindow: cfg.RADIUS.DuplicateWindow.D(), Logger: log}
	if cfg.Proxy.Enabled() {
		if cfg.Proxy.Listen != "" {
			if d.proxyConn, err = net.ListenPacket("udp", cfg.Proxy.Listen); err != nil {
				return nil, fmt.Errorf("proxy: listen %s: %w", cfg.Proxy.Listen, err)
			}
		}
		d.proxy, err = radius.NewProxy(d.proxyConn, radiusClients(cfg.NAS), d.rec, cfg.Proxy, radius.ProxyOptions{
			Workers: cfg.RADIUS.Workers, DuplicateWindow: cfg.RADIUS.DuplicateWindow.D(), Logger: log,
		})
		if err != nil {
			return nil, err
		}
		if cfg.Proxy.ForwardAccounting {
			acctOpts.Forward = d.proxy
		}
	}
	d.radius, err = radius.NewListener(d.radiusConn, radiusClients(cfg.NAS), d.rec, acctOpts)
	if err != nil {
		return nil, err
	}
	d.logs = &runSet[frlog.Config, *frlog.Source]{kind: "freeradius_log", log: log,
		name:  func(c frlog.Config) string { return c.Name },
		build: func(c frlog.Config) *frlog.Source { return frlog.New(c, d.rec, st, log) },
	}
	d.logs.apply(cfg.FreeRADIUSLog, false)
	d.sqls = &runSet[frsql.Config, *frsql.Source]{kind: "sql_source", log: log,
		name: func(c frsql.Config) string { return c.Name },
		build: func(c frsql.Config) *frsql.Source {
			src := frsql.New(c, d.rec, st, log)
			// A session another source already reports is left to it.
			src.SetKnown(frsql.KnownFrom(d.state, "frsql:"+c.Name))
			return src
		},
	}
	d.sqls.apply(sqlSources(cfg), false)

	d.actions.configure(cfg)
	if d.auth, err = newAuth(cfg, st, log); err != nil {
		return nil, err
	}
	mx := newMetrics(d)
	d.web, err = webui.New(webui.Options{
		State: d.state, Store: d.store, Hub: d.hub, Watches: d.watches, Logger: log, Metrics: mx.handler(), MetricsLogin: cfg.HTTP.MetricsLogin,
		Routers: d.routerStatus,
		Auth:    d.auth, Desk: d.auth == nil, AllowedOrigins: cfg.HTTP.PublicURLs,
		Disconnect: d.Disconnect, AgentsMayDisconnect: d.actions.agentsMay,
		Checks: append([]webui.Check{
			webui.RecorderCheck(d.rec),
			webui.InfoCheck("radius", func() any { return d.radius.Stats() }),
			webui.InfoCheck("routeros", func() any { return d.routerStatus() }),
			webui.InfoCheck("proxy", func() any {
				if d.proxy == nil {
					return nil
				}
				return d.proxy.Stats()
			}),
			webui.InfoCheck("sql_source", func() any { return statuses(d.sqls, (*frsql.Source).Status) }),
			webui.InfoCheck("freeradius_log", func() any { return statuses(d.logs, (*frlog.Source).Status) }),
		}, d.shared.checks()...),
	})
	if err != nil {
		return nil, err
	}
	d.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: listen %s: %w", cfg.HTTP.Listen, err)
	}
	d.warnPlainHTTP()
	return d, nil
}

// nasNames maps each single-address [[nas]] to its name: how a FreeRADIUS
// database's nasipaddress becomes the NAS name the other sources use.
func nasNames(nas []config.NAS) map[string]string {
	out := map[string]string{}
	for _, n := range nas {
		if p := n.Prefix(); p.IsSingleIP() {
			out[p.Addr().String()] = n.Name
		}
	}
	return out
}

func radiusClients(nas []config.NAS) []radius.Client {
	out := make([]radius.Client, len(nas))
	for i, n := range nas {
		out[i] = radius.Client{Name: n.Name, Prefix: n.Prefix(), Secret: []byte(n.Secret.Reveal()),
			AllowMissingMessageAuthenticator: n.RequireMessageAuthenticator != nil && !*n.RequireMessageAuthenticator}
	}
	return out
}

// Reload re-reads the configuration at path and applies what can change
// without a restart: the NAS client list (packets in flight are answered
// with the secret they arrived under) and the RouterOS routers (unchanged
// ones stay connected). A file that does not validate changes nothing.
func (d *Daemon) Reload(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		d.log.Error("reload: configuration refused; keeping the running one", "err", err)
		return err
	}
	if err := d.radius.SetClients(radiusClients(cfg.NAS)); err != nil {
		d.log.Error("reload: NAS list refused; keeping the running one", "err", err)
		return err
	}
	if d.proxy != nil {
		if err := d.proxy.SetClients(radiusClients(cfg.NAS)); err != nil {
			d.log.Error("reload: NAS list refused by the proxy", "err", err)
			return err
		}
	}
	d.actions.configure(cfg)
	d.state.SetBlockPolicy(blockPolicy(cfg.Blocked))
	added, removed, kept := d.applyRouters(cfg.RouterOS, cfg.Blocked.AddressLists)
	logsAdded, logsRemoved, _ := d.logs.apply(cfg.FreeRADIUSLog, false)
	sqlsAdded, sqlsRemoved, _ := d.sqls.apply(sqlSources(cfg), false)
	if cfg.HTTP.Listen != d.cfg.HTTP.Listen || cfg.RADIUS.Listen != d.cfg.RADIUS.Listen || cfg.Store != d.cfg.Store {
		d.log.Warn("reload: listen addresses and [store] change only with a restart")
	}
	if !reflect.DeepEqual(cfg.HTTP, d.cfg.HTTP) || !reflect.DeepEqual(cfg.Auth, d.cfg.Auth) {
		d.log.Warn("reload: [http] and [auth] change only with a restart")
	}
	d.log.Info("reload: configuration applied", "nas", len(cfg.NAS), "routers_added", added, "routers_removed", removed, "routers_unchanged", kept,
		"logs_added", logsAdded, "logs_removed", logsRemoved, "sql_sources_added", sqlsAdded, "sql_sources_removed", sqlsRemoved)
	return nil
}

// sqlSources are the [[sql_source]] entries, each knowing the NAS names
// when it lists none, so that its sessions meet RADIUS's and RouterOS's.
func sqlSources(cfg *config.Config) []frsql.Config {
	out := slices.Clone(cfg.SQLSources)
	for i := range out {
		if len(out[i].NAS) == 0 {
			out[i].NAS = nasNames(cfg.NAS)
		}
	}
	return out
}

// blockPolicy is what, in an Access-Accept, means blocked or reduced.
func blockPolicy(b config.Blocked) watcher.BlockPolicy {
	return watcher.BlockPolicy{AddressLists: b.AddressLists, Pools: b.Pools, ReducedRateLimits: b.ReducedRateLimits}
}

// HTTPAddr is the address the page and API listen on.
func (d *Daemon) HTTPAddr() string { return d.httpLn.Addr().String() }

// RADIUSAddr is the address the accounting listener is bound to.
func (d *Daemon) RADIUSAddr() string { return d.radiusConn.LocalAddr().String() }

// Recorder is the daemon's recorder, for in-process sources (the demo's).
func (d *Daemon) Recorder() *watcher.Recorder { return d.rec }

// Run serves until ctx ends or a part fails, then stops the parts in order:
// sources stop reading, the recorder commits and acknowledges what is queued,
// the state is checkpointed and the store closed.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	warnNoAccounts(ctx, d.auth, d.log)

	// The recorder outlives the sources: it has its own context, ended only
	// once every source has returned.
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecorder()
	recDone := make(chan error, 1)
	go func() { recDone <- d.rec.Run(recCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.radius.Run(gctx) })
	if d.proxy != nil {
		g.Go(func() error { return d.proxy.Run(gctx) })
	}
	g.Go(func() error { return d.logs.run(gctx) })
	g.Go(func() error { return d.sqls.run(gctx) })
	g.Go(func() error { return d.routers.run(gctx) })
	g.Go(func() error { return d.watches.Run(gctx) })
	g.Go(func() error { return d.serveHTTP(gctx) })
	g.Go(func() error { return d.expireSessions(gctx) })
	g.Go(func() error { return d.checkpoints(gctx) })
	g.Go(func() error { return d.prune(gctx) })
	g.Go(func() error { return d.shared.run(gctx) })
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}

	stopRecorder()
	if rerr := <-recDone; rerr != nil && err == nil {
		err = rerr
	}
	if cerr := d.checkpoint(context.Background()); cerr != nil {
		d.log.Error("final state checkpoint failed", "err", cerr)
	}
	d.log.Info("authwatch stopped")
	return err
}

func (d *Daemon) serveHTTP(ctx context.Context) error {
	srv := &http.Server{Handler: d.web, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- d.serve(srv) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	d.web.Close() // websockets are not tracked by Shutdown
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// checkpoint saves the state, unless the store has it already: serialising
// 100,000 customers takes a few hundred milliseconds and tens of MB, for
// nothing at the start after a clean stop, or on a quiet night.
func (d *Daemon) checkpoint(ctx context.Context) error {
	start := time.Now()
	if d.state.Seq() == d.cp.seq.Load() {
		d.cp.at.Store(start.Unix())
		return nil
	}
	cp, err := d.state.MarshalCheckpoint()
	if err == nil {
		err = d.store.SaveCheckpoint(ctx, cp)
	}
	if err != nil {
		d.cp.errors.Add(1)
		return err
	}
	size := 0
	for _, p := range cp.Parts {
		size += len(p)
	}
	d.cp.seq.Store(cp.Seq)
	d.cp.at.Store(start.Unix())
	d.cp.bytes.Store(int64(size))
	d.cp.took.Store(int64(time.Since(start)))
	return nil
}

// pruneWatches deletes the ended reboot watches older than keep.
func (d *Daemon) pruneWatches(ctx context.Context, keep time.Duration) {
	ws, ok := d.store.(watcher.WatchStore)
	if !ok {
		return
	}
	n, err := ws.PruneWatches(ctx, time.Now().Add(-keep))
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Error("retention: pruning watches failed", "err", err)
	case n > 0:
		d.log.Info("retention: old reboot watches pruned", "watches", n, "older_than", keep)
	}
}

// checkpoints saves the state now and then, so that a restart replays only
// recent events and keeps sessions whose start retention already pruned.
func (d *Daemon) checkpoints(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Store.CheckpointInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := d.checkpoint(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("state checkpoint failed", "err", err)
			}
		}
	}
}

// prune deletes events and ended reboot watches older than the retention,
// once at start and then hourly. The checkpoint must be newer than what is
// pruned, or a restart would lose open sessions: it is saved first.
func (d *Daemon) prune(ctx context.Context) error {
	keep := d.cfg.Store.Retention.D()
	if keep <= 0 {
		return nil
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if !d.shared.leads(ctx, "retention") {
			d.log.Debug("retention: another instance prunes")
		} else if err := d.checkpoint(ctx); err != nil {
			if ctx.Err() == nil {
				d.log.Error("retention: checkpoint before pruning failed; not pruning", "err", err)
			}
		} else if n, err := d.store.Prune(ctx, time.Now().Add(-keep)); err != nil {
			if ctx.Err() == nil {
				d.log.Error("retention: prune failed", "err", err)
			}
		} else {
			if n > 0 {
				d.log.Info("retention: old events pruned", "events", n, "older_than", keep)
			}
			d.pruneWatches(ctx, keep)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *Daemon) close() {
	if d.httpLn != nil {
		d.httpLn.Close()
	}
	if d.radiusConn != nil {
		d.radiusConn.Close()
	}
	if d.proxy != nil {
		d.proxy.Close()
	}
	if d.proxyConn != nil {
		d.proxyConn.Close()
	}
	d.shared.close()
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Error("store: close", "err", err)
		}
	}
}

// ProxyAddr is the address of proxy mode's Access-Request listener ("" when
// it is off).
func (d *Daemon) ProxyAddr() string {
	if d.proxyConn == nil {
		return ""
	}
	return d.proxyConn.LocalAddr().String()
}
