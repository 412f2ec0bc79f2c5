package app_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
	"authwatch/watcher/frlog"
	"authwatch/watcher/sqlstore"
)

// load sends accounting from n concurrent senders until stop is closed and
// returns the session ids that were acked.
func load(t *testing.T, addr string, n int, stop <-chan struct{}) func() []string {
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	c, err := radiustest.NewClient(addr, []byte(secret), radiustest.ClientOptions{Retry: 200 * time.Millisecond, Tries: 2})
	if err != nil {
		t.Fatal(err)
	}
	var seq atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("s%06d", seq.Add(1))
				p, _ := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "load" + id[len(id)-3:], SessionID: id}.Packet([]byte(secret))
				if _, err := c.Exchange(context.Background(), p); err == nil {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	return func() []string {
		wg.Wait()
		c.Close()
		return acked
	}
}

// storedSessions opens the SQLite file and returns the session ids stored,
// with how many times each was stored.
func storedSessions(t *testing.T, path string) map[string]int {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string]int{}
	err = st.Replay(context.Background(), 0, func(ev watcher.Event) error {
		out[ev.SessionID]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStopUnderLoadLosesNoAckedEvent is SIGTERM's promise: the daemon stops
// reading, commits and answers what is in flight, and every request a NAS
// saw acked is in the store, once.
func TestStopUnderLoadLosesNoAckedEvent(t *testing.T) {
	db := filepath.Join(t.TempDir(), "authwatch.db")
	d, stopDaemon := start(t, testConfig(t, db))
	stop := make(chan struct{})
	wait := load(t, d.RADIUSAddr(), 32, stop)
	time.Sleep(300 * time.Millisecond)
	stopDaemon() // what SIGTERM does: cancel, then wait for Run
	close(stop)
	acked := wait()
	if len(acked) < 100 {
		t.Fatalf("only %d requests acked before the stop: the test proves nothing", len(acked))
	}
	stored := storedSessions(t, db)
	for _, id := range acked {
		if stored[id] != 1 {
			t.Fatalf("acked %s stored %d times", id, stored[id])
		}
	}
	t.Logf("%d acked, %d stored", len(acked), len(stored))
}

// TestReloadAddsANAS: a reload adds a NAS while another one is sending, and
// no packet in flight is lost.
func TestReloadAddsANAS(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "authwatch.db")
	path := filepath.Join(dir, "authwatch.toml")
	base := fmt.Sprintf("[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = %q\n[radius]\nlisten = \"127.0.0.1:0\"\n[[nas]]\nname = \"bras-centro\"\naddress = \"127.0.0.1\"\nsecret = %q\n", db, secret)
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, stopDaemon := start(t, cfg)

	// The new NAS sends from another loopback address.
	norte, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer norte.Close()
	server, _ := net.ResolveUDPAddr("udp", d.RADIUSAddr())
	exchange := func() bool {
		b, _ := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "ana", SessionID: "norte-1"}.Encode([]byte("norte-secret"))
		norte.WriteTo(b, server)
		norte.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 4096)
		n, _, err := norte.ReadFrom(buf)
		if err != nil {
			return false
		}
		_, err = radius.Parse(buf[:n], []byte("norte-secret"))
		return err == nil
	}
	if exchange() {
		t.Fatal("a NAS not yet configured was answered")
	}

	stop := make(chan struct{})
	wait := load(t, d.RADIUSAddr(), 8, stop)
	time.Sleep(100 * time.Millisecond)
	more := base + "[[nas]]\nname = \"bras-norte\"\naddress = \"127.0.0.2\"\nsecret = \"norte-secret\"\n"
	if err := os.WriteFile(path, []byte(more), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	acked := wait()
	if !exchange() {
		t.Fatal("the NAS added by reload was not answered")
	}
	stopDaemon()
	stored := storedSessions(t, db)
	for _, id := range acked {
		if stored[id] != 1 {
			t.Fatalf("acked %s stored %d times", id, stored[id])
		}
	}
	if stored["norte-1"] != 1 {
		t.Errorf("the new NAS's Start stored %d times", stored["norte-1"])
	}

	// A broken file changes nothing.
	os.WriteFile(path, []byte("[nope]\n"), 0o600)
	if err := d.Reload(path); err == nil {
		t.Error("a broken configuration was applied")
	}
}

// TestReloadSources: a reload starts a [[freeradius_log]] added to the file,
// restarts one whose entry changed from where it stopped (no line read
// twice, none missed), and stops one removed.
func TestReloadSources(t *testing.T) {
	dir := t.TempDir()
	path, logPath := filepath.Join(dir, "authwatch.toml"), filepath.Join(dir, "radius.log")
	base := fmt.Sprintf("[http]\nlisten = \"127.0.0.1:0\"\nauth = false\n[store]\npath = %q\n[radius]\nlisten = \"127.0.0.1:0\"\n[probe]\nenabled = false\n"+
		"[[nas]]\nname = \"bras-centro\"\naddress = \"127.0.0.1\"\nsecret = %q\n", filepath.Join(dir, "authwatch.db"), secret)
	withLog := func(zone string) string {
		return base + fmt.Sprintf("[[freeradius_log]]\nname = \"radius-1\"\npath = %q\nbackfill = 10\ntimezone = %q\n", logPath, zone)
	}
	line := func(n int) string {
		return fmt.Sprintf("Wed Nov 25 10:00:%02d 2026 : Auth: (%d) Login OK: [joao] (from client bras1 port %d cli AA-BB-CC-DD-EE-FF)\n", n, n, n)
	}
	appendLine := func(n int) {
		t.Helper()
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(line(n)); err != nil {
			t.Fatal(err)
		}
	}
	reload := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	appendLine(1)
	reload(base)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	api := "http://" + d.HTTPAddr()
	accepts := func(want int) {
		t.Helper()
		var evs struct{ Events []watcher.Event }
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			getJSON(t, api+"/api/customers/joao/events", &evs)
			if len(evs.Events) >= want || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond) // and no more come
		getJSON(t, api+"/api/customers/joao/events", &evs)
		if len(evs.Events) != want {
			t.Fatalf("%d events for joao, want %d: %+v", len(evs.Events), want, evs.Events)
		}
	}
	logs := func() int {
		var h struct {
			Checks struct {
				Logs struct{ Detail []frlog.Status } `json:"freeradius_log"`
			}
		}
		getJSON(t, api+"/healthz", &h)
		return len(h.Checks.Logs.Detail)
	}

	reload(withLog("UTC"))
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	accepts(1)
	appendLine(2)
	accepts(2)

	// Changed: restarted from where it stopped.
	reload(withLog("America/Sao_Paulo"))
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	appendLine(3)
	accepts(3)

	// Removed: stopped; what is written afterwards is not read.
	reload(base)
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	if n := logs(); n != 0 {
		t.Fatalf("%d FreeRADIUS logs followed after their removal", n)
	}
	appendLine(4)
	accepts(3)
}
