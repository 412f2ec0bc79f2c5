package watcher

import (
	"testing"
	"time"
)

// A session keeps the NAS-IP-Address its accounting reported: where "End
// session" sends the Disconnect-Request when the [[nas]] is a range. It
// survives a link with the RouterOS view of the same session and a
// checkpoint.
func TestSessionKeepsNASIP(t *testing.T) {
	s := NewState()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Apply(Event{Seq: 1, At: at, Login: "joao", Kind: SessionStart, Source: "routeros:bras", NAS: "bras", SessionID: "81a00003", MAC: "AA:BB:CC:00:00:01", IP: "100.64.0.9"})
	s.Apply(Event{Seq: 2, At: at.Add(time.Second), Login: "joao", Kind: SessionStart, Source: "radius", NAS: "bras", SessionID: "radius-1", MAC: "AA:BB:CC:00:00:01", IP: "100.64.0.9",
		Detail: &Detail{NASIP: "10.0.0.7"}})
	c, _ := s.Customer("joao")
	if len(c.Sessions) != 1 || c.Sessions[0].NASIP != "10.0.0.7" {
		t.Fatalf("sessions %+v", c.Sessions)
	}
	cp, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	r := NewState()
	if err := r.RestoreCheckpoint(cp); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Customer("joao"); len(c.Sessions) != 1 || c.Sessions[0].NASIP != "10.0.0.7" {
		t.Fatalf("after a checkpoint: %+v", c.Sessions)
	}
}
