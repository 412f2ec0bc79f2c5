package radius_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	authradius "authwatch/radius"
)

// stockCoASite is where Debian's freeradius package installs the sample
// dynamic-authorization server.
const stockCoASite = "/etc/freeradius/3.0/sites-available/coa"

// stockCoASiteCopy is that file's server section as FreeRADIUS 3.2 ships it,
// for machines where /etc/freeradius is not readable (it belongs to the
// freerad group).
const stockCoASiteCopy = `listen {
	type = coa
	ipaddr = *
	port = 3799
	virtual_server = coa
}

server coa {
	recv-coa {
		suffix
		ok
	}
	send-coa {
		ok
	}
}
`

// coaSite returns the stock coa virtual server listening on 127.0.0.1:port,
// and the modules it uses as the stock mods-enabled defines them (suffix from
// mods-available/realm, ok from mods-available/always).
func coaSite(t testing.TB) freeRADIUSExtra {
	site := stockCoASiteCopy
	if b, err := os.ReadFile(stockCoASite); err == nil {
		site = string(b)
	} else {
		t.Logf("using the copy of the stock coa site: %v", err)
	}
	return func(port int) (string, string, error) {
		s := strings.Replace(site, "\tipaddr = *\n", "\tipaddr = 127.0.0.1\n", 1)
		s = strings.Replace(s, "\tport = 3799\n", fmt.Sprintf("\tport = %d\n", port), 1)
		if !strings.Contains(s, fmt.Sprintf("\tport = %d\n", port)) || !strings.Contains(s, "ipaddr = 127.0.0.1") {
			return "", "", errors.New("the stock coa site's listen section changed; update coaSite")
		}
		const modules = `	realm suffix {
		format = suffix
		delimiter = "@"
	}
	always ok {
		rcode = ok
	}
`
		return modules, s, nil
	}
}

// FreeRADIUS's stock coa virtual server, which drops Disconnect-Requests
// whose Request Authenticator or Message-Authenticator does not verify and
// ACKs the others, answers ours with Disconnect-ACK.
func TestDisconnectFreeRADIUS(t *testing.T) {
	t.Parallel()
	fr := startFreeRADIUSWith(t, "coa", false, coaSite(t))
	req := authradius.DisconnectRequest{
		NAS: fr.extra, Secret: authradius.Secret(fr.secret), UserName: "joao", AcctSessionID: "81a00003",
		FramedIP: netip.MustParseAddr("100.64.0.7"), NASIP: netip.MustParseAddr("127.0.0.1"),
	}
	opts := authradius.DisconnectOptions{Timeout: time.Second, Tries: 2}
	res, err := authradius.Disconnect(context.Background(), req, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != authradius.ResultDone || res.Tries != 1 {
		t.Fatalf("result %+v\n%s", res, fr.out)
	}

	// With the wrong secret FreeRADIUS drops the request: no answer.
	req.Secret = "wrong-secret"
	opts = authradius.DisconnectOptions{Timeout: 200 * time.Millisecond, Tries: 2}
	if res, err = authradius.Disconnect(context.Background(), req, opts); err != nil || res.Result != authradius.ResultTimeout {
		t.Fatalf("wrong secret: result %+v, %v", res, err)
	}
	// It checks the Message-Authenticator first: "… with invalid
	// Message-Authenticator! (Shared secret is incorrect.)".
	const dropped = "Shared secret is incorrect"
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(fr.out.String(), dropped) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(fr.out.String(), dropped) {
		t.Errorf("FreeRADIUS did not say why it dropped the request:\n%s", fr.out)
	}
}
