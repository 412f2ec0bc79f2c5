package watch_test

import (
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/watch"
)

func TestOutageDetector(t *testing.T) {
	d := &watch.OutageDetector{Threshold: 3, Window: 10 * time.Second, Hold: time.Minute}
	stopOn := func(nas string, sec int) watcher.Event {
		return watcher.Event{At: at(sec), Login: "x", Kind: watcher.SessionStop, Source: "radius", NAS: nas}
	}
	// Two stops, then one too late to count with the first: no outage.
	for _, ev := range []watcher.Event{stopOn("bras1", 0), stopOn("bras1", 5), stopOn("bras1", 11), stopOn("bras2", 12)} {
		if o := d.Observe(ev, 1); o != nil {
			t.Fatalf("outage from %+v: %+v", ev, o)
		}
	}
	o := d.Observe(stopOn("bras1", 12), 1) // 5, 11, 12: three within 10 s
	if o == nil || o.NAS != "bras1" || o.Count != 3 || !o.Since.Equal(at(5)) {
		t.Fatalf("outage %+v", o)
	}
	if again := d.Observe(stopOn("bras1", 13), 1); again != nil {
		t.Errorf("the same outage raised twice: %+v", again)
	}
	if o := d.Observe(watcher.Event{At: at(20), Kind: watcher.NASUp, Source: "radius", NAS: "bras3", Reason: "Accounting-On"}, 0); o != nil {
		t.Errorf("a NAS starting with no sessions is an outage: %+v", o)
	}
	if o := d.Observe(watcher.Event{At: at(20), Kind: watcher.NASDown, Source: "radius", NAS: "bras2", Reason: "Accounting-Off"}, 12); o == nil || o.Cause != "Accounting-Off" {
		t.Errorf("Accounting-Off: %+v", o)
	}
	if n := len(d.Active(at(30))); n != 2 {
		t.Errorf("%d active, want 2", n)
	}
	if n := len(d.Active(at(200))); n != 0 {
		t.Errorf("%d active after hold, want 0", n)
	}
}
