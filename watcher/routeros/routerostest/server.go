package routerostest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// Limits and timeouts of the fake, named so tests can reason about them.
const (
	// maxClientWord is the longest word accepted from a client.
	maxClientWord = 1 << 20
	// sendQueue is how many sentences may wait for one client; a client
	// that lets more pile up through listens is disconnected, as a router
	// would eventually drop a peer that does not read.
	sendQueue = 4096
	// writeWait bounds one write to a client.
	writeWait = 10 * time.Second
	// defaultMaxLog is how many log entries the fake keeps for /log/print
	// (RouterOS keeps 1000 in memory by default).
	defaultMaxLog = 1000
)

// The menus every server has; AddMenu adds more.
const (
	PPPActive   = "/ppp/active"
	QueueSimple = "/queue/simple"
	AddressList = "/ip/firewall/address-list"
	LogMenu     = "/log"
)

// Options configure a Server. The zero value serves plain API on a random
// loopback port with user "admin" and an empty password.
type Options struct {
	Addr     string // listen address; default "127.0.0.1:0"
	User     string // default "admin"
	Password string
	Identity string // /system/identity name; default "MikroTik"
	Version  string // /system/resource version; default "7.16.2 (stable)"

	// TLS serves api-ssl. Without Certificate a self-signed certificate for
	// 127.0.0.1, ::1 and localhost is generated (see CertPEM, Fingerprint).
	TLS         bool
	Certificate *tls.Certificate

	MaxLog int          // log entries kept; default 1000
	Logger *slog.Logger // the fake's own debug log; default discards
}

// Server is a fake RouterOS API service over real TCP (or TLS). It speaks the
// wire protocol (length-prefixed words, sentences, !re/!done/!trap/!fatal,
// .tag, post-6.43 /login, =.proplist=, simple ?queries, listen, follow and
// /cancel) over a scriptable set of menus: /ppp/active, /queue/simple,
// /ip/firewall/address-list, /log, /system/identity and /system/resource.
//
// All methods are safe for concurrent use. Close stops every goroutine the
// server started.
type Server struct {
	opts    Options
	ln      net.Listener
	leaf    *x509.Certificate
	started time.Time
	log     *slog.Logger

	mu       sync.Mutex
	user     string
	password string
	identity string
	menus    map[string]*menu
	logs     []logEntry
	logSeq   uint32
	conns    map[*conn]struct{}
	fail     map[string]string // command → trap message
	logins   int
	closed   bool

	wg sync.WaitGroup
}

// New starts a server listening on opts.Addr.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.User == "" {
		opts.User = "admin"
	}
	if opts.Identity == "" {
		opts.Identity = "MikroTik"
	}
	if opts.Version == "" {
		opts.Version = "7.16.2 (stable)"
	}
	if opts.MaxLog <= 0 {
		opts.MaxLog = defaultMaxLog
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: opts, started: time.Now(), log: opts.Logger,
		user: opts.User, password: opts.Password, identity: opts.Identity,
		menus: map[string]*menu{}, conns: map[*conn]struct{}{}, fail: map[string]string{},
	}
	s.menus[PPPActive] = &menu{path: PPPActive, nextID: 0x80000001, dynamic: true, readOnly: true}
	for _, p := range []string{QueueSimple, AddressList} {
		s.menus[p] = &menu{path: p, nextID: 1}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("routerostest: listen %s: %w", opts.Addr, err)
	}
	if opts.TLS {
		cert := opts.Certificate
		if cert == nil {
			if cert, err = selfSigned(); err != nil {
				ln.Close()
				return nil, err
			}
		}
		s.leaf = cert.Leaf
		if s.leaf == nil {
			if s.leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				ln.Close()
				return nil, fmt.Errorf("routerostest: parse certificate: %w", err)
			}
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CertPEM returns the server's TLS certificate in PEM, for a CA file; nil
// without TLS.
func (s *Server) CertPEM() []byte {
	if s.leaf == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.leaf.Raw})
}

// Fingerprint returns the SHA-256 of the server's TLS certificate in hex;
// "" without TLS.
func (s *Server) Fingerprint() string {
	if s.leaf == nil {
		return ""
	}
	sum := sha256.Sum256(s.leaf.Raw)
	return hex.EncodeToString(sum[:])
}

// Close stops accepting, drops every connection and waits for the server's
// goroutines to end. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	conns := s.connList()
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
}

// SetCredentials changes the user and password later logins must present.
func (s *Server) SetCredentials(user, password string) {
	s.mu.Lock()
	s.user, s.password = user, password
	s.mu.Unlock()
}

// SetIdentity changes what /system/identity/print answers.
func (s *Server) SetIdentity(name string) {
	s.mu.Lock()
	s.identity = name
	s.mu.Unlock()
}

// KillConnections drops every client connection at once, as a router reboot
// or a link failure would, and returns how many there were. The server keeps
// listening, so clients can reconnect.
func (s *Server) KillConnections() int {
	s.mu.Lock()
	conns := s.connList()
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return len(conns)
}

// Conns returns the number of client connections open now.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Logins returns how many logins have succeeded since the server started.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Listens returns how many listens (listen, print =follow= or
// =follow-only=) are active on a menu path such as PPPActive or LogMenu.
func (s *Server) Listens(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		for _, l := range c.listens {
			if l.path == path {
				n++
			}
		}
	}
	return n
}

// FailCommand makes every later run of command (e.g. "/ppp/active/listen")
// answer !trap with message, as a router without that feature or policy
// would. An empty message clears it.
func (s *Server) FailCommand(command, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if message == "" {
		delete(s.fail, command)
		return
	}
	s.fail[command] = message
}

// InjectListen sends one sentence made of words, with the listen's .tag
// appended, to every active listen on path, and returns how many got it.
// Tests use it for unknown reply words and malformed items.
func (s *Server) InjectListen(path string, words ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		for _, l := range c.listens {
			if l.path == path {
				c.push(EncodeSentence(append(append([]string(nil), words...), ".tag="+l.tag)...))
				n++
			}
		}
	}
	return n
}

// TrapListens ends every listen on path with "!trap =message=message" and
// !done, as a router does when a listen fails, and returns how many ended.
func (s *Server) TrapListens(path, message string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		for tag, l := range c.listens {
			if l.path == path {
				c.push(EncodeSentence("!trap", "=message="+message, ".tag="+tag))
				c.push(EncodeSentence("!done", ".tag="+tag))
				delete(c.listens, tag)
				n++
			}
		}
	}
	return n
}

// InjectRaw writes b unframed to every client connection (for broken
// framing and huge word lengths) and returns how many got it.
func (s *Server) InjectRaw(b []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.push(append([]byte(nil), b...))
	}
	return len(s.conns)
}

func (s *Server) connList() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		c := &conn{s: s, nc: nc, out: make(chan []byte, sendQueue), done: make(chan struct{}), listens: map[string]*listen{}}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		go c.readLoop()
		go c.writeLoop()
	}
}

// selfSigned makes a short-lived ECDSA certificate for loopback.
func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("routerostest: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("routerostest: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "routerostest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("routerostest: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("routerostest: parse certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// conn is one client connection: a reader goroutine that runs commands in
// order and a writer goroutine that owns the socket's write side.
type conn struct {
	s    *Server
	nc   net.Conn
	out  chan []byte // framed sentences; nil means "close after what is queued"
	done chan struct{}
	once sync.Once

	loggedIn bool // reader goroutine only

	listens map[string]*listen // by tag; guarded by s.mu
}

type listen struct {
	tag  string
	path string
	rq   request // for its queries and =.proplist=
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// hangUp closes the connection once what is queued has been written, the
// way RouterOS sends !fatal and then closes.
func (c *conn) hangUp() {
	c.send(nil)
	select {
	case <-c.done:
	case <-time.After(writeWait):
	}
}

// push queues b without blocking; a client too slow to take it is dropped.
// Used for listen updates produced by other goroutines.
func (c *conn) push(b []byte) {
	select {
	case c.out <- b:
	case <-c.done:
	default:
		c.s.log.Debug("routerostest: client too slow, dropping it", "remote", c.nc.RemoteAddr().String())
		c.close()
	}
}

// send queues b, waiting while the queue is full: a reply to the client's
// own command may wait for the client to read.
func (c *conn) send(b []byte) {
	select {
	case c.out <- b:
	case <-c.done:
	}
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	w := bufio.NewWriterSize(c.nc, 32<<10)
	for {
		var b []byte
		select {
		case b = <-c.out:
		case <-c.done:
			return
		}
		if b == nil {
			w.Flush()
			c.close()
			return
		}
		c.nc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := w.Write(b); err != nil {
			c.close()
			return
		}
		if len(c.out) == 0 {
			if err := w.Flush(); err != nil {
				c.close()
				return
			}
		}
	}
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer func() {
		c.close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.listens = map[string]*listen{}
		c.s.mu.Unlock()
	}()
	r := &wordReader{r: bufio.NewReader(c.nc), max: maxClientWord}
	for {
		words, err := r.readSentence()
		if err != nil {
			if errors.Is(err, errWordTooLong) {
				c.send(EncodeSentence("!fatal", "=message="+err.Error()))
				c.hangUp()
			}
			return
		}
		if !c.handle(parseRequest(words)) {
			return
		}
	}
}

// reply frames one reply sentence, adding the request's tag.
func (c *conn) reply(rq request, words ...string) {
	c.send(EncodeSentence(tagged(rq, words)...))
}

func (c *conn) replyDone(rq request, words ...string) {
	c.reply(rq, append([]string{"!done"}, words...)...)
}

// trap answers a failed command: !trap with the message, then !done, which
// ends every command in the RouterOS API.
func (c *conn) trap(rq request, message string, category ...string) {
	words := []string{"!trap"}
	for _, cat := range category {
		words = append(words, "=category="+cat)
	}
	c.reply(rq, append(words, "=message="+message)...)
	c.replyDone(rq)
}

// handle runs one command; false ends the connection.
func (c *conn) handle(rq request) bool {
	s := c.s
	if rq.command == "/login" {
		c.login(rq)
		return true
	}
	if !c.loggedIn {
		c.trap(rq, "not logged in")
		return true
	}
	if bad, ok := rq.attrs["\x00bad"]; ok {
		c.trap(rq, fmt.Sprintf("unknown parameter %s", bad))
		return true
	}
	s.mu.Lock()
	msg := s.fail[rq.command]
	s.mu.Unlock()
	if msg != "" {
		c.trap(rq, msg)
		return true
	}
	switch rq.command {
	case "/quit":
		c.reply(rq, "!fatal", "=message=session terminated on request")
		c.hangUp()
		return false
	case "/cancel":
		c.cancel(rq)
		return true
	case "/system/identity/print", "/system/identity/getall":
		s.mu.Lock()
		id := s.identity
		s.mu.Unlock()
		c.reply(rq, "!re", "=name="+id)
		c.replyDone(rq)
		return true
	case "/system/resource/print", "/system/resource/getall":
		c.reply(rq, proplist(rq, []field{
			{"uptime", formatUptime(time.Since(s.started))},
			{"version", s.opts.Version},
			{"build-time", "2024-12-05 10:17:20"},
			{"cpu-load", "3"},
			{"free-memory", "911646720"},
			{"total-memory", "1073741824"},
			{"architecture-name", "x86_64"},
			{"board-name", "CHR"},
			{"platform", "MikroTik"},
		})...)
		c.replyDone(rq)
		return true
	case "/log/print", "/log/getall":
		c.logPrint(rq, rq.attrs)
		return true
	case "/log/listen":
		c.logPrint(rq, map[string]string{"follow-only": ""})
		return true
	}
	i := strings.LastIndexByte(rq.command, '/')
	path, verb := rq.command[:i], rq.command[i+1:]
	s.mu.Lock()
	m := s.menus[path]
	s.mu.Unlock()
	if m == nil || i <= 0 {
		c.trap(rq, "no such command or directory ("+strings.TrimPrefix(path, "/")+")", "0")
		return true
	}
	switch verb {
	case "print", "getall":
		c.menuPrint(rq, m)
	case "listen":
		c.menuListen(rq, m)
	case "remove":
		c.menuRemove(rq, m)
	case "add":
		c.menuAdd(rq, m)
	case "set":
		c.menuSet(rq, m)
	default:
		c.trap(rq, "no such command ("+verb+")", "0")
	}
	return true
}

// login implements the post-6.43 one-step login: =name= and =password= in
// clear text (which is why api-ssl matters), !done on success.
func (c *conn) login(rq request) {
	s := c.s
	s.mu.Lock()
	ok := rq.attrs["name"] == s.user && rq.attrs["password"] == s.password
	if ok {
		s.logins++
	}
	s.mu.Unlock()
	if !ok {
		c.trap(rq, "invalid user name or password (6)")
		return
	}
	c.loggedIn = true
	c.replyDone(rq)
}

// cancel ends one listen (=tag=) or all of this connection's listens: the
// listen gets "!trap =category=2 =message=interrupted" then its !done, and
// the /cancel itself its own !done.
func (c *conn) cancel(rq request) {
	s := c.s
	s.mu.Lock()
	var tags []string
	if tag, ok := rq.attrs["tag"]; ok {
		if _, ok := c.listens[tag]; ok {
			tags = append(tags, tag)
		}
	} else {
		for tag := range c.listens {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	for _, tag := range tags {
		delete(c.listens, tag)
		c.push(EncodeSentence("!trap", "=category=2", "=message=interrupted", ".tag="+tag))
		c.push(EncodeSentence("!done", ".tag="+tag))
	}
	s.mu.Unlock()
	c.replyDone(rq)
}

// subscribe registers a listen for path under the request's tag; s.mu must
// be held. An untagged listen streams untagged replies and can only be ended
// by a /cancel without =tag=.
func (c *conn) subscribe(rq request, path string) {
	c.listens[rq.tag] = &listen{tag: rq.tag, path: path, rq: rq}
}

// notify sends an added or changed item to every listen on path whose
// queries it matches, trimmed to the listen's =.proplist=; s.mu must be held.
func (s *Server) notify(path string, fs []field) {
	for c := range s.conns {
		for _, l := range c.listens {
			if l.path == path && matches(fs, l.rq.queries) {
				c.push(EncodeSentence(tagged(l.rq, proplist(l.rq, fs))...))
			}
		}
	}
}

// notifyDead tells every listen on path that item id is gone; s.mu must be
// held.
func (s *Server) notifyDead(path, id string) {
	for c := range s.conns {
		for _, l := range c.listens {
			if l.path == path {
				c.push(EncodeSentence(tagged(l.rq, []string{"!re", "=.id=" + id, "=.dead=yes"})...))
			}
		}
	}
}

func tagged(rq request, words []string) []string {
	if rq.hasTag {
		return append(words, ".tag="+rq.tag)
	}
	return words
}

// proplist turns fields into an !re sentence, keeping only those named in
// =.proplist= when it is given.
func proplist(rq request, fields []field) []string {
	words := []string{"!re"}
	if pl, ok := rq.attrs[".proplist"]; ok {
		want := map[string]bool{}
		for _, k := range strings.Split(pl, ",") {
			want[strings.TrimSpace(k)] = true
		}
		for _, f := range fields {
			if want[f.k] {
				words = append(words, "="+f.k+"="+f.v)
			}
		}
		return words
	}
	for _, f := range fields {
		words = append(words, "="+f.k+"="+f.v)
	}
	return words
}

// formatUptime renders d the way RouterOS does: 1w2d3h4m5s, 0s.
func formatUptime(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		unit string
	}{{7 * 86400, "w"}, {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if secs >= u.n {
			fmt.Fprintf(&b, "%d%s", secs/u.n, u.unit)
			secs %= u.n
		}
	}
	return b.String()
}
