package routerostest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3"
	"github.com/go-routeros/routeros/v3/proto"
)

func newServer(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestEncodeLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0}},
		{0x7F, []byte{0x7F}},
		{0x80, []byte{0x80, 0x80}},
		{0x3FFF, []byte{0xBF, 0xFF}},
		{0x4000, []byte{0xC0, 0x40, 0x00}},
		{0x1FFFFF, []byte{0xDF, 0xFF, 0xFF}},
		{0x200000, []byte{0xE0, 0x20, 0x00, 0x00}},
		{0xFFFFFFF, []byte{0xEF, 0xFF, 0xFF, 0xFF}},
		{0x10000000, []byte{0xF0, 0x10, 0x00, 0x00, 0x00}},
	} {
		if got := EncodeLength(tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("EncodeLength(%#x) = % x, want % x", tc.n, got, tc.want)
		}
		r := &wordReader{r: bufio.NewReader(bytes.NewReader(tc.want)), max: 1 << 30}
		if got, err := r.readLength(); err != nil || got != tc.n {
			t.Errorf("readLength(% x) = %#x, %v; want %#x", tc.want, got, err, tc.n)
		}
	}
}

// TestGoRouterOSClient drives the fake with the go-routeros client the
// source uses, so both ends agree on the protocol, long words included.
func TestGoRouterOSClient(t *testing.T) {
	s := newServer(t, Options{User: "api", Password: "pw", Identity: "bras-test"})
	if _, err := routeros.DialTimeout(s.Addr(), "api", "wrong", 2*time.Second); err == nil ||
		!strings.Contains(err.Error(), "invalid user name or password (6)") {
		t.Fatalf("bad password: err = %v", err)
	}
	c, err := routeros.DialTimeout(s.Addr(), "api", "pw", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	r, err := c.Run("/system/identity/print")
	if err != nil || len(r.Re) != 1 || r.Re[0].Map["name"] != "bras-test" {
		t.Fatalf("identity: %v %v", r, err)
	}
	long := strings.Repeat("x", 0x4321) // a three-byte length
	id := s.AddSession(Session{Name: "joao", CallerID: "52:54:00:AA:00:03", Address: "10.99.0.2", Encoding: long})
	r, err = c.Run("/ppp/active/print", "=.proplist=.id,name,encoding,uptime")
	if err != nil || len(r.Re) != 1 {
		t.Fatalf("print: %v %v", r, err)
	}
	got := r.Re[0].Map
	if got[".id"] != id || got["name"] != "joao" || got["encoding"] != long || got["uptime"] == "" || got["caller-id"] != "" {
		t.Fatalf("print row = %v", got)
	}
	if _, err := c.Run("/ppp/active/remove", "=.id=*DEAD"); err == nil || !strings.Contains(err.Error(), "no such item") {
		t.Fatalf("remove missing: %v", err)
	}
	if _, err := c.Run("/nope/print"); err == nil {
		t.Fatal("unknown menu: no error")
	}

	c.Queue = 16
	l, err := c.Listen("/ppp/active/listen")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Listens(PPPActive) == 1 })
	id2 := s.AddSession(Session{Name: "maria", Address: "0.0.0.0"})
	if err := s.SetSessionAddress(id2, "10.99.0.9"); err != nil {
		t.Fatal(err)
	}
	s.RemoveSession("joao")
	want := []string{"maria 0.0.0.0", "maria 10.99.0.9", id + " dead"}
	for _, w := range want {
		select {
		case sen := <-l.Chan():
			got := sen.Map["name"] + " " + sen.Map["address"]
			if sen.Map[".dead"] == "yes" {
				got = sen.Map[".id"] + " dead"
			}
			if got != w {
				t.Fatalf("listen got %q, want %q", got, w)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("listen: no %q", w)
		}
	}
	// The async Run of go-routeros v3.0.1 may lose a fast reply
	// (go-routeros/routeros#33), so cancel through the raw protocol below.
	c.Close()
	for range l.Chan() {
	}
}

// rawClient speaks the protocol by hand, to check exact reply sentences.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  proto.Reader
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawClient{t: t, nc: nc, r: proto.NewReader(nc)}
	rc.send("/login", "=name=admin", "=password=")
	rc.expect("!done")
	return rc
}

func (rc *rawClient) send(words ...string) {
	if _, err := rc.nc.Write(EncodeSentence(words...)); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawClient) read() *proto.Sentence {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	sen, err := rc.r.ReadSentence()
	if err != nil {
		rc.t.Fatal(err)
	}
	return sen
}

func (rc *rawClient) expect(word string, kv ...string) *proto.Sentence {
	rc.t.Helper()
	sen := rc.read()
	if sen.Word != word {
		rc.t.Fatalf("got %s, want %s", sen, word)
	}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		if k == ".tag" {
			if sen.Tag != v {
				rc.t.Fatalf("got %s, want tag %s", sen, v)
			}
			continue
		}
		if sen.Map[k] != v {
			rc.t.Fatalf("got %s, want %s=%s", sen, k, v)
		}
	}
	return sen
}

func TestCancelAndLog(t *testing.T) {
	s := newServer(t, Options{})
	rc := dialRaw(t, s)
	rc.send("/log/listen", ".tag=7")
	waitFor(t, func() bool { return s.Listens(LogMenu) == 1 })
	s.AppendLog("pppoe,ppp,error", "<0010>: user joao authentication failed")
	rc.expect("!re", "topics=pppoe,ppp,error", "message=<0010>: user joao authentication failed", ".tag=7")
	rc.send("/cancel", "=tag=7", ".tag=8")
	// The listen ends with the interrupted trap and its !done; the cancel
	// gets its own !done.
	rc.expect("!trap", "category=2", "message=interrupted", ".tag=7")
	rc.expect("!done", ".tag=7")
	rc.expect("!done", ".tag=8")

	rc.send("/log/print", "?topics=pppoe,ppp,error", "=.proplist=message", ".tag=9")
	rc.expect("!re", "message=<0010>: user joao authentication failed", ".tag=9")
	rc.expect("!done", ".tag=9")

	rc.send("/queue/simple/add", "=name=joao", "=target=10.99.0.2/32", ".tag=10")
	id := rc.expect("!done", ".tag=10").Map["ret"]
	rc.send("/queue/simple/print", "=count-only=", ".tag=11")
	rc.expect("!done", "ret=1", ".tag=11")
	rc.send("/queue/simple/remove", "=.id="+id, ".tag=12")
	rc.expect("!done", ".tag=12")
	rc.send("/queue/simple/remove", "=.id="+id, ".tag=13")
	rc.expect("!trap", "message=no such item", ".tag=13")
	rc.expect("!done", ".tag=13")

	s.FailCommand("/ppp/active/listen", "no such command prefix")
	rc.send("/ppp/active/listen", ".tag=14")
	rc.expect("!trap", "message=no such command prefix", ".tag=14")
	rc.expect("!done", ".tag=14")

	rc.send("/quit")
	rc.expect("!fatal", "message=session terminated on request")
}

func TestKillAndClose(t *testing.T) {
	s := newServer(t, Options{})
	rc := dialRaw(t, s)
	if n := s.KillConnections(); n != 1 {
		t.Fatalf("killed %d connections, want 1", n)
	}
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := rc.r.ReadSentence(); err == nil {
		t.Fatal("read after kill: no error")
	}
	waitFor(t, func() bool { return s.Conns() == 0 })
	rc = dialRaw(t, s) // still listening
	s.Close()
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := rc.r.ReadSentence(); err == nil {
		t.Fatal("read after close: no error")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("dial after close succeeded")
	}
}

func TestHugeWordFromClient(t *testing.T) {
	s := newServer(t, Options{})
	rc := dialRaw(t, s)
	// A claimed 256 MiB word must not be allocated: the fake says why and
	// hangs up.
	rc.nc.Write([]byte{0xF0, 0x10, 0x00, 0x00, 0x00})
	sen := rc.expect("!fatal")
	if !strings.Contains(sen.Map["message"], "word too long") {
		t.Fatalf("fatal = %s", sen)
	}
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := rc.r.ReadSentence(); err == nil {
		t.Fatal("connection still open")
	}
}

func TestNotLoggedIn(t *testing.T) {
	s := newServer(t, Options{})
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rc := &rawClient{t: t, nc: nc, r: proto.NewReader(nc)}
	rc.send("/ppp/active/print")
	rc.expect("!trap", "message=not logged in")
	rc.expect("!done")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseLeavesNoGoroutines: the demo runs the fake for the life of the
// process and tests start many; Close must end everything it started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := New(Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	// The client's goroutines wait on this context (go-routeros ties them
	// to the Listen context), so it is cancelled, after Close, at the end.
	ctx, cancel := context.WithCancel(context.Background())
	var clients []*routeros.Client
	for range 3 {
		c, err := routeros.DialTLSTimeout(s.Addr(), "admin", "", &tls.Config{InsecureSkipVerify: true}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		c.Queue = 8
		l, err := c.ListenContext(ctx, "/log/listen")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range l.Chan() {
			}
		}()
	}
	waitFor(t, func() bool { return s.Listens(LogMenu) == 3 })
	for i := range 100 {
		s.AppendLog("pppoe,ppp,info", fmt.Sprintf("<pppoe-u%d>: connected", i))
	}
	s.Close()
	for _, c := range clients {
		c.Close()
	}
	cancel()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func TestStory(t *testing.T) {
	s := newServer(t, Options{})
	id := s.ConnectSession(Session{Name: "joao", CallerID: "52:54:00:AA:00:03", Address: "10.99.0.2"})
	if ss := s.Sessions(); len(ss) != 1 || ss[0].ID != id || ss[0].Address != "10.99.0.2" {
		t.Fatalf("sessions = %+v", ss)
	}
	s.RejectLogin("maria", "18:FD:74:22:23:B7")
	if !s.DisconnectSession("joao", "peer is not responding") || len(s.Sessions()) != 0 {
		t.Fatal("disconnect failed")
	}
	var msgs []string
	for _, e := range s.logs {
		msgs = append(msgs, e.topics+" "+e.message)
	}
	want := []string{
		"pppoe,info PPPoE connection established from 52:54:00:AA:00:03",
		"pppoe,ppp,info <pppoe-joao>: authenticated",
		"pppoe,ppp,info <pppoe-joao>: connected",
		"pppoe,ppp,info,account joao logged in, 10.99.0.2 from 52:54:00:AA:00:03",
		"pppoe,info PPPoE connection established from 18:FD:74:22:23:B7",
		"pppoe,ppp,error <0005>: user maria authentication failed",
		"pppoe,ppp,info <pppoe-joao>: terminating... - peer is not responding",
		"pppoe,ppp,info <pppoe-joao>: disconnected",
	}
	for i, w := range want {
		if i >= len(msgs) || msgs[i] != w {
			t.Fatalf("log line %d = %q, want %q\n%s", i, msgs[min(i, len(msgs)-1)], w, strings.Join(msgs, "\n"))
		}
	}
	if !strings.HasPrefix(msgs[len(want)], "pppoe,ppp,info,account joao logged out, 0 512 2048 3 4 from 52:54:00:AA:00:03") {
		t.Fatalf("last line = %q", msgs[len(want)])
	}
}
