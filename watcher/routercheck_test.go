package watcher_test

import (
	"testing"

	"authwatch/watcher"
)

func TestRouterCheck(t *testing.T) {
	policy := watcher.BlockPolicy{AddressLists: []string{"bloqueados"}, ReducedRateLimits: []string{"1M/1M"}}
	by := func(b *watcher.Block) string {
		if b == nil {
			return ""
		}
		return b.By + " (" + b.Source + ")"
	}
	const router = "routeros:bras1"
	session := func(seq int64, kind watcher.Kind, id string, rc *watcher.RouterCheck) watcher.Event {
		return watcher.Event{Seq: seq, At: at(int(seq)), Login: "joao", Kind: kind, Source: router, NAS: "bras1", SessionID: id,
			IP: "100.64.0.9", Detail: &watcher.Detail{RouterCheck: rc}}
	}
	s := watcher.NewState()
	s.SetBlockPolicy(policy)

	// The session comes up; the router lists its IP in "bloqueados" and
	// shapes it to the reduced plan.
	s.Apply(session(1, watcher.SessionStart, "a", nil))
	s.Apply(session(2, watcher.SessionUpdate, "a", &watcher.RouterCheck{Queue: "<pppoe-joao>", MaxLimit: "1M/1M", ListsChecked: true, AddressLists: []string{"bloqueados"}}))
	c, _ := s.Customer("joao")
	if c.Plan != "1M/1M" || by(c.Blocked) != "address-list bloqueados ("+router+")" || by(c.Reduced) != "max-limit 1M/1M ("+router+")" || !c.Blocked.Since.Equal(at(2)) {
		t.Fatalf("blocked session: plan %q blocked %s reduced %s", c.Plan, by(c.Blocked), by(c.Reduced))
	}

	// The session ends: what the router said of it goes with it.
	s.Apply(session(3, watcher.SessionStop, "a", nil))
	if c, _ := s.Customer("joao"); c.Blocked != nil || c.Reduced != nil || c.Plan != "1M/1M" {
		t.Fatalf("offline: plan %q blocked %s reduced %s", c.Plan, by(c.Blocked), by(c.Reduced))
	}

	// Paid: the next session is in no list and has its full plan.
	s.Apply(session(4, watcher.SessionStart, "b", &watcher.RouterCheck{MaxLimit: "150M/300M", ListsChecked: true}))
	if c, _ := s.Customer("joao"); c.Blocked != nil || c.Reduced != nil || c.Plan != "150M/300M" {
		t.Fatalf("paid: plan %q blocked %s reduced %s", c.Plan, by(c.Blocked), by(c.Reduced))
	}

	// A router that found the IP in a list lifts its own block while the
	// session is up, when a later check finds it gone.
	s.Apply(session(5, watcher.SessionUpdate, "b", &watcher.RouterCheck{ListsChecked: true, AddressLists: []string{"bloqueados"}}))
	s.Apply(session(6, watcher.SessionUpdate, "b", &watcher.RouterCheck{ListsChecked: true, AddressLists: []string{"bloqueados"}}))
	if c, _ := s.Customer("joao"); c.Blocked == nil || !c.Blocked.Since.Equal(at(5)) {
		t.Fatalf("blocked again: %s, want since the first finding", by(c.Blocked))
	}
	s.Apply(session(7, watcher.SessionUpdate, "b", &watcher.RouterCheck{ListsChecked: true}))
	if c, _ := s.Customer("joao"); c.Blocked != nil {
		t.Fatalf("lifted: %s", by(c.Blocked))
	}

	// Lists not read (the router refused, none configured) say nothing.
	s.Apply(session(8, watcher.SessionUpdate, "b", &watcher.RouterCheck{ListsChecked: true, AddressLists: []string{"bloqueados"}}))
	s.Apply(session(9, watcher.SessionUpdate, "b", &watcher.RouterCheck{MaxLimit: "150M/300M"}))
	if c, _ := s.Customer("joao"); c.Blocked == nil {
		t.Fatal("a check that did not read the lists lifted the block")
	}

	// What the accept decided stands against the router: the check may
	// run before RouterOS adds the IP to the accept's list.
	s.Apply(session(10, watcher.SessionStop, "b", nil))
	s.Apply(watcher.Event{Seq: 11, At: at(11), Login: "joao", Kind: watcher.AuthAccept, Source: "proxy",
		Detail: &watcher.Detail{Attributes: map[string]string{"26:14988:19": "bloqueados"}}})
	s.Apply(session(12, watcher.SessionStart, "c", &watcher.RouterCheck{ListsChecked: true}))
	if c, _ := s.Customer("joao"); by(c.Blocked) != "address-list bloqueados (proxy)" {
		t.Fatalf("accept's block: %s", by(c.Blocked))
	}
	// Going offline does not forget it either.
	s.Apply(session(13, watcher.SessionStop, "c", nil))
	if c, _ := s.Customer("joao"); c.Blocked == nil {
		t.Fatal("the accept's block was forgotten at the stop")
	}

	// A checkpoint keeps who said it.
	data, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	r := watcher.NewState()
	if err := r.RestoreCheckpoint(data); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Customer("joao"); by(c.Blocked) != "address-list bloqueados (proxy)" {
		t.Fatalf("restored: %s", by(c.Blocked))
	}
}
