package radius

import (
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

func TestResponseAuthenticator(t *testing.T) {
	for i, secret := range [][]byte{[]byte("s"), []byte("s3cret"), make([]byte, 300)} {
		req := radius.New(radius.CodeAccountingRequest, secret)
		rfc2866.AcctStatusType_Set(req, rfc2866.AcctStatusType_Value_Start)
		if i > 0 { // proxies in the path: their states come back in order
			req.Add(rfc2865.ProxyState_Type, radius.Attribute("proxy-1"))
			req.Add(rfc2866.AcctSessionID_Type, radius.Attribute("x"))
			req.Add(rfc2865.ProxyState_Type, radius.Attribute("proxy-2"))
		}
		reqb, err := req.Encode()
		if err != nil {
			t.Fatal(err)
		}
		resp := accountingResponse(reqb[1], [16]byte(reqb[4:20]), proxyStates(reqb), secret)
		if !radius.IsAuthenticResponse(resp, reqb, secret) {
			t.Errorf("secret of %d bytes: response does not verify", len(secret))
		}
		// The same answer as layeh.com/radius would encode.
		parsed, err := radius.Parse(reqb, secret)
		if err != nil {
			t.Fatal(err)
		}
		layeh := parsed.Response(radius.CodeAccountingResponse)
		for _, ps := range parsed.Attributes {
			if ps.Type == rfc2865.ProxyState_Type {
				layeh.Add(ps.Type, ps.Attribute)
			}
		}
		want, err := layeh.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != string(resp) {
			t.Errorf("secret of %d bytes: % x, layeh encodes % x", len(secret), resp, want)
		}
	}
}

func TestDupCache(t *testing.T) {
	c := newDupCache[string](50*time.Millisecond, 1<<10)
	src := netip.MustParseAddrPort("10.0.0.1:1812")
	k := newDupKey(src, 7, []byte("0123456789abcdef"))

	if st, _ := c.begin(k); st != dupNew {
		t.Fatalf("first: %v", st)
	}
	if st, _ := c.begin(k); st != dupPending {
		t.Fatalf("while pending: %v", st)
	}
	c.answer(k, "reply")
	if st, v := c.begin(k); st != dupAnswered || v != "reply" {
		t.Fatalf("answered: %v %q", st, v)
	}
	other := k
	other.port++
	if st, _ := c.begin(other); st != dupNew {
		t.Fatalf("other port: %v", st)
	}
	c.forget(other)
	if st, _ := c.begin(other); st != dupNew {
		t.Fatalf("after forget: %v", st)
	}
	// Stored but not forwarded: the next copy claims it, once.
	c.park(other)
	if st, _ := c.begin(other); st != dupStored {
		t.Fatalf("parked: %v", st)
	}
	if st, _ := c.begin(other); st != dupPending {
		t.Fatalf("parked, claimed: %v", st)
	}
	time.Sleep(60 * time.Millisecond)
	if st, _ := c.begin(k); st != dupNew {
		t.Fatalf("after the window: %v", st)
	}
}

// However fast requests come, the cache holds at most its cap.
func TestDupCacheBounded(t *testing.T) {
	const max = 4096
	c := newDupCache[struct{}](time.Hour, max)
	src := netip.MustParseAddrPort("10.0.0.1:1812")
	var auth [16]byte
	for i := range 100_000 {
		auth[0], auth[1], auth[2] = byte(i), byte(i>>8), byte(i>>16)
		c.begin(newDupKey(src, byte(i), auth[:]))
	}
	if n := c.len(); n > max {
		t.Fatalf("%d entries, cap %d", n, max)
	}
	// The most recent requests are still remembered.
	if st, _ := c.begin(newDupKey(src, byte(99_999&0xff), auth[:])); st != dupPending {
		t.Fatalf("latest request forgotten: %v", st)
	}
}

func TestClientTable(t *testing.T) {
	counters := (&counters{}).forNAS
	tbl, err := buildClients([]Client{
		{Name: "wide", Prefix: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("a")},
		{Name: "pop", Prefix: netip.MustParsePrefix("10.1.0.0/16"), Secret: []byte("b")},
		{Name: "pop-again", Prefix: netip.MustParsePrefix("10.1.0.0/16"), Secret: []byte("c")},
		{Name: "bras", Prefix: netip.MustParsePrefix("10.1.2.3/32"), Secret: []byte("d")},
		{Name: "mapped", Prefix: netip.MustParsePrefix("::ffff:192.0.2.1/128"), Secret: []byte("e")},
		{Name: "v6", Prefix: netip.MustParsePrefix("2001:db8::/32"), Secret: []byte("f")},
	}, counters)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"10.1.2.3":        "bras",
		"::ffff:10.1.2.3": "bras",
		"10.1.9.9":        "pop",
		"10.200.0.1":      "wide",
		"192.0.2.1":       "mapped",
		"2001:db8::1":     "v6",
		"11.0.0.1":        "",
		"2001:db9::1":     "",
		"fe80::1%eth0":    "",
	} {
		got := ""
		if c := tbl.lookup(netip.MustParseAddr(addr)); c != nil {
			got = c.name
		}
		if got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if _, err := buildClients([]Client{{Name: "x", Secret: []byte("s")}}, counters); err == nil {
		t.Error("client without address accepted")
	}
}
