package watcher

import (
	"testing"
	"time"
)

func TestRadiusAndRouterOSOneSession(t *testing.T) {
	s := NewState()
	t0 := time.Now()
	ev := func(kind Kind, src, id, ip string, at time.Duration) Event {
		return Event{At: t0.Add(at), Kind: kind, Login: "joao", Source: src, NAS: "bras", SessionID: id, MAC: "52:54:00:AA:00:03", IP: ip}
	}
	s.Apply(ev(SessionStart, "radius", "81a00003", "10.99.0.2", 0))
	s.Apply(ev(SessionStart, "routeros:bras", "*80000003", "", time.Second)) // ids differ, IP not yet known
	if c, _ := s.Customer("joao"); len(c.Sessions) != 2 {
		t.Fatalf("before IP: %d sessions", len(c.Sessions))
	}
	s.Apply(ev(SessionUpdate, "routeros:bras", "*80000003", "10.99.0.2", 2*time.Second))
	c, _ := s.Customer("joao")
	if len(c.Sessions) != 1 || c.Sessions[0].Source != "radius" {
		t.Fatalf("after IP: %+v", c.Sessions)
	}
	s.Apply(ev(SessionUpdate, "routeros:bras", "*80000003", "10.99.0.2", 3*time.Second))
	if c, _ := s.Customer("joao"); len(c.Sessions) != 1 {
		t.Fatalf("after second update: %+v", c.Sessions)
	}
	s.Apply(ev(SessionStop, "routeros:bras", "*80000003", "10.99.0.2", 4*time.Second))
	if c, _ := s.Customer("joao"); c.Online || len(c.Sessions) != 0 {
		t.Fatalf("after stop by the other source: %+v", c)
	}
	s.Apply(ev(SessionStop, "radius", "81a00003", "10.99.0.2", 5*time.Second)) // the late Stop is harmless
	if c, _ := s.Customer("joao"); c.Online {
		t.Fatal("online")
	}
}
