package webui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"authwatch/watcher"
	"authwatch/watcher/routeros"
	"authwatch/watcher/watch"
	"authwatch/webui/auth"
)

//go:embed static
var staticFiles embed.FS

// Options are what a Server is built from. State, Store and Hub are required.
type Options struct {
	State *watcher.State
	Store watcher.Store
	Hub   *watcher.Hub

	// Checks are extra components reported by /healthz beside the store
	// (the recorder, the RADIUS listener…). Any check that is not OK makes
	// /healthz answer 503. Names must be unique and not "store".
	Checks []Check

	// AllowedOrigins are browser origins, besides the page's own, allowed to
	// open the websocket, written as scheme://host[:port]
	// (e.g. "https://noc.example.net"). Every other cross-origin request is
	// refused: the websocket carries customer data and sends no credentials
	// check of its own, so Origin is the guard against other sites' pages.
	AllowedOrigins []string

	// Metrics, when set, is served at GET /metrics (e.g. promhttp.HandlerFor
	// over the daemon's registry): to anyone, or with MetricsLogin to
	// accounts only (Prometheus sends an API token as a bearer).
	Metrics      http.Handler
	MetricsLogin bool

	// Watches runs reboot watches; nil disables the /api/watches routes.
	Watches *watch.Manager

	// Routers reports the RouterOS routers' connections for /api/routers.
	Routers func() []routeros.Status

	// Auth authenticates every route but the public ones (see routes).
	// Either Auth or Desk is required.
	Auth *auth.Service
	// Desk serves without accounts, every request acting as a local admin:
	// for a server that listens on loopback only (config refuses it
	// otherwise).
	Desk bool

	// Disconnect ends a customer's sessions at the NAS for POST
	// /api/customers/{login}/disconnect ("End session"; see disconnect.go);
	// nil answers 501. Admins may use it; agents when AgentsMayDisconnect
	// (read at every request, so a reload applies) says so.
	Disconnect          func(context.Context, DisconnectRequest) (DisconnectResult, error)
	AgentsMayDisconnect func() bool

	Logger *slog.Logger
}

// Server is the web page, the JSON API and the websocket. It is an
// http.Handler; call Close when shutting down to end the websockets, which
// http.Server.Shutdown does not track once they are upgraded.
type Server struct {
	state        *watcher.State
	store        watcher.Store
	hub          *watcher.Hub
	checks       []Check
	metrics      http.Handler
	metricsLogin bool
	watches      *watch.Manager
	routers      func() []routeros.Status
	log          *slog.Logger
	origins      map[string]bool
	auth         *auth.Service // nil in desk mode
	desk         bool

	disconnect          func(context.Context, DisconnectRequest) (DisconnectResult, error)
	agentsMayDisconnect func() bool

	registry []*route          // every route, in routes() order
	byRoute  map[string]*route // by pattern

	assets   map[string]asset
	mux      *http.ServeMux
	handler  http.Handler
	upgrader websocket.Upgrader

	// Websocket timing and sizes; the constants in ws.go, shortened by tests.
	writeWait  time.Duration
	pongWait   time.Duration
	pingPeriod time.Duration
	closeGrace time.Duration
	statsEvery time.Duration
	catchupCap int

	ctx    context.Context // ended by Close; every websocket watches it
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[*websocket.Conn]struct{}
	wg     sync.WaitGroup // one per websocket handler
}

// New checks o and returns a Server ready to serve.
func New(o Options) (*Server, error) {
	switch {
	case o.State == nil:
		return nil, errors.New("webui: no State")
	case o.Store == nil:
		return nil, errors.New("webui: no Store")
	case o.Hub == nil:
		return nil, errors.New("webui: no Hub")
	case o.Auth == nil && !o.Desk:
		return nil, errors.New("webui: no Auth (or Desk, for a loopback-only server without accounts)")
	case o.Auth != nil && o.Desk:
		return nil, errors.New("webui: Auth and Desk are exclusive")
	}
	names := map[string]bool{"store": true}
	for _, c := range o.Checks {
		switch {
		case c.Name == "" || c.Run == nil:
			return nil, fmt.Errorf("webui: check %q: needs a name and a Run function", c.Name)
		case names[c.Name]:
			return nil, fmt.Errorf("webui: check %q: name used twice (or reserved)", c.Name)
		}
		names[c.Name] = true
	}
	origins := make(map[string]bool, len(o.AllowedOrigins))
	for _, s := range o.AllowedOrigins {
		origin, err := normalizeOrigin(s)
		if err != nil {
			return nil, fmt.Errorf("webui: allowed origin %q: %w", s, err)
		}
		origins[origin] = true
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		state: o.State, store: o.Store, hub: o.Hub, checks: o.Checks, watches: o.Watches, routers: o.Routers, metrics: o.Metrics, metricsLogin: o.MetricsLogin,
		log: o.Logger, origins: origins, assets: assets,
		auth: o.Auth, desk: o.Desk, byRoute: map[string]*route{},
		disconnect: o.Disconnect, agentsMayDisconnect: o.AgentsMayDisconnect,
		mux:        http.NewServeMux(),
		writeWait:  writeWait,
		pongWait:   pongWait,
		pingPeriod: pingPeriod,
		closeGrace: closeGrace,
		statsEvery: statsEvery,
		catchupCap: catchupCap,
		ctx:        ctx, cancel: cancel,
		conns: make(map[*websocket.Conn]struct{}),
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024, // clients send next to nothing
		WriteBufferSize:  4096,
		CheckOrigin:      s.checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeError(w, status, reason.Error())
		},
	}
	s.routes()
	s.handler = s.recoverPanics(s.onlyRegistered(s.mux))
	return s, nil
}

// apiCatchAll catches what no API route matched, to answer it in JSON.
const apiCatchAll = "/api/"

// routes lists every route the server answers, each with who may use it
// (Public, Agent, Admin) and, for those that show customers' data, what the
// audit log records. A route registered on s.mux without s.handle is refused
// to everyone (onlyRegistered), and a test fails on it.
func (s *Server) routes() {
	// The page and its files are public: they hold no data, and the page
	// must load to show its login screen.
	s.handle("GET /{$}", Public, s.handleIndex)
	s.handle("GET /login.html", Public, s.handleLoginPage)
	s.handle("GET /static/{name}", Public, s.handleAsset)

	s.handle("GET /healthz", Public, s.handleHealth) // details for admins only
	if s.metrics != nil {
		access := Public // counters and NAS names, no customer's data
		if s.metricsLogin {
			access = Agent
		}
		s.handle("GET /metrics", access, s.metrics.ServeHTTP)
	}

	s.handle("POST /api/login", Public, s.handleLogin)
	s.handle("POST /api/logout", Agent, s.handleLogout)
	s.handle("GET /api/me", Agent, s.handleMe)

	s.handle("GET /api/customers/{login}", Agent, s.handleCustomer, auditedLogin("customer", loginFromPath, false))
	s.handle("GET /api/customers/{login}/events", Agent, s.handleEvents, auditedLogin("events", loginFromPath, true))
	s.handle("GET /api/lookup", Agent, s.handleLookup, audited("lookup", searchQuery))
	s.handle("GET /api/outages", Agent, s.handleOutages)
	s.handle("GET /api/watches", Agent, s.handleWatchList, audited("watch.list", everyLogin))
	s.handle("POST /api/watches", Agent, s.handleWatchStart, audited("watch.start", loginFromBody))
	s.handle("GET /api/watches/{id}", Agent, s.handleWatchGet, audited("watch.get", idFromPath))
	s.handle("DELETE /api/watches/{id}", Agent, s.handleWatchCancel, audited("watch.cancel", idFromPath))
	s.handle("GET /api/watches/{id}/summary", Agent, s.handleWatchSummary, audited("watch.summary", idFromPath))
	s.handle("POST /api/customers/{login}/probe", Agent, s.handleProbe, auditedLogin("probe", loginFromPath, false))
	// Admins, or agents when allowed (checked by the handler); the audit
	// entry is written by Options.Disconnect, once per disconnect, before
	// anything is sent.
	s.handle("POST /api/customers/{login}/disconnect", Agent, s.handleDisconnect)

	s.handle("GET /api/routers", Admin, s.handleRouters)
	s.handle("GET /api/audit", Admin, s.handleAudit)
	s.handle("GET /api/users", Admin, s.handleUsers)
	s.handle("POST /api/users", Admin, s.handleUserAdd)
	s.handle("PATCH /api/users/{name}", Admin, s.handleUserUpdate)

	// Not Found and Method Not Allowed in JSON; behind login, so that the
	// API's shape is not shown to strangers.
	s.handle(apiCatchAll, Agent, s.handleAPINotFound)

	s.handle("GET /ws", Agent, s.handleWS, auditedLogin("watch", loginFromQuery, true))
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Close ends every websocket (close code 1001) and refuses new ones, waiting
// until their goroutines are gone. Connections that do not take the close
// frame within a short grace are closed outright. The plain HTTP routes keep
// working; stopping them is the http.Server's job.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	// A client that answers takes the close frame and replies within
	// closeGrace; past twice that, whoever is left is not listening.
	grace := time.NewTimer(2 * s.closeGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	}
	// A writer is stuck on a client that reads nothing: closing the socket
	// under it makes its write fail at once.
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return nil
}

// recoverPanics turns a panic in a handler into a logged 500 instead of a
// dropped connection, as a last line of defence: handlers are written to
// refuse bad input, not to panic on it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// asset is one embedded file of the page, ready to serve.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// loadAssets reads the embedded page once. The files carry no modification
// time, so a hash of the content is what lets browsers revalidate them.
func loadAssets() (map[string]asset, error) {
	entries, err := staticFiles.ReadDir("static")
	if err != nil {
		return nil, fmt.Errorf("webui: embedded page: %w", err)
	}
	assets := make(map[string]asset, len(entries))
	for _, e := range entries {
		body, err := staticFiles.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("webui: embedded page: %w", err)
		}
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		assets[e.Name()] = asset{name: e.Name(), body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	for _, page := range []string{"index.html", "login.html"} {
		if _, ok := assets[page]; !ok {
			return nil, errors.New("webui: embedded page: no " + page)
		}
	}
	return assets, nil
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	s.serveAsset(w, r, s.assets["index.html"])
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("name")]
	if !ok {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	s.serveAsset(w, r, a)
}

// serveAsset answers with a's content, or 304 when the browser has it:
// "no-cache" makes browsers ask every time, so a new binary never runs
// with an old script.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// checkOrigin is the websocket's CSRF guard. Browsers always send Origin on
// websocket handshakes, so a request without one is not from a web page
// (authwatch tail, curl) and is let through; with one, it must be the page's
// own origin or one configured.
func (s *Server) checkOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || s.originAllowed(o, r.Host) {
		return true
	}
	s.log.Warn("websocket: origin refused", "origin", o, "host", r.Host, "remote", r.RemoteAddr)
	return false
}

// originAllowed reports whether a browser Origin is the page's own (the
// request's Host) or one configured.
func (s *Server) originAllowed(o, host string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	n, err := normalizeOrigin(o)
	return err == nil && s.origins[n]
}

// normalizeOrigin returns s as a browser sends it in Origin: lower-case
// scheme://host[:port], no path.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", errors.New("want scheme://host[:port], e.g. https://noc.example.net")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
