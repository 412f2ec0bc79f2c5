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
