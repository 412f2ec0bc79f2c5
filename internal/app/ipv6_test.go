package app_test

import (
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"layeh.com/radius/rfc2866"

	"authwatch/radius/radiustest"
)

// TestLookupByIPv6: a dual-stack session's IPv6 data is stored and shown,
// and the customer is found by any address inside the delegated prefix (an
// abuse report names one), by the prefix itself, and by the IPv4 address.
func TestLookupByIPv6(t *testing.T) {
	d, _ := start(t, testConfig(t, filepath.Join(t.TempDir(), "authwatch.db")))
	base := "http://" + d.HTTPAddr()
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "v6",
		IP: netip.MustParseAddr("100.64.3.7"), IPv6Prefix: netip.MustParsePrefix("2804:db8:1:2::/64"),
		DelegatedPrefix: netip.MustParsePrefix("2804:db8:100::/56")})
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "maria", SessionID: "v4", IP: netip.MustParseAddr("100.64.3.8")})

	c := customerAt(t, base, "joao")
	if len(c.IPv6) != 2 || !slices.Contains(c.IPv6, "2804:db8:1:2::/64") || !slices.Contains(c.IPv6, "2804:db8:100::/56") {
		t.Fatalf("ipv6 %v", c.IPv6)
	}
	for _, tt := range []struct{ q, kind, want string }{
		{"2804:db8:100:ab::1", "ip", "joao"},        // inside the delegated prefix
		{"2804:DB8:100:00ab:0:0:0:1", "ip", "joao"}, // any spelling
		{"2804:db8:1:2::1234", "ip", "joao"},        // inside the framed prefix
		{"2804:db8:100::/56", "prefix", "joao"},     // the prefix itself
		{"2804:db8:100:40::/60", "prefix", "joao"},  // a part of it
		{"100.64.3.7", "ip", "joao"},
		{"2804:db8:999::1", "ip", ""},
	} {
		var ans struct {
			Query   struct{ Kind string }
			Results []struct{ Login string }
		}
		getJSON(t, base+"/api/lookup?q="+url.QueryEscape(tt.q), &ans)
		if ans.Query.Kind != tt.kind {
			t.Errorf("%s: kind %q, want %q", tt.q, ans.Query.Kind, tt.kind)
		}
		got := ""
		if len(ans.Results) > 0 {
			got = ans.Results[0].Login
		}
		if got != tt.want || len(ans.Results) > 1 {
			t.Errorf("%s: found %+v, want %q", tt.q, ans.Results, tt.want)
		}
	}
}

// TestLookupFindsSessionsKnownOnlyByInterims: a session that started before
// authwatch did is seen only through Interim-Updates, which the store's MAC
// and IP indexes leave out; the state still finds it.
func TestLookupFindsSessionsKnownOnlyByInterims(t *testing.T) {
	d, _ := start(t, testConfig(t, filepath.Join(t.TempDir(), "authwatch.db")))
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_InterimUpdate, User: "ana", SessionID: "old",
		MAC: "18:FD:74:00:00:0A", IP: netip.MustParseAddr("100.64.9.10"), SessionTime: 3600})
	for _, q := range []string{"18-fd-74-00-00-0a", "100.64.9.10"} {
		var ans struct{ Results []struct{ Login string } }
		getJSON(t, "http://"+d.HTTPAddr()+"/api/lookup?q="+url.QueryEscape(q), &ans)
		if len(ans.Results) != 1 || ans.Results[0].Login != "ana" {
			t.Errorf("%s: %+v", q, ans.Results)
		}
	}
}
