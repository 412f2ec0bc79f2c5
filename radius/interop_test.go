package radius_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
)

// FreeRADIUS's radclient, a NAS implementation we did not write, is acked
// and its record stored with the right fields.
func TestRadclientInterop(t *testing.T) {
	t.Parallel()
	radclient := radiustest.NeedCommand(t, "radclient")
	h := startListener(t, localNAS, authradius.Options{})

	run := func(code, attrs string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, radclient, "-x", "-r", "1", "-t", "3", h.addr.String(), code, string(testSecret))
		cmd.Stdin = strings.NewReader(attrs)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("radclient %s: %v\n%s", code, err, out)
		}
		return string(out)
	}

	out := run("acct", strings.Join([]string{
		`User-Name = "rc-user"`,
		`Acct-Status-Type = Start`,
		`Acct-Session-Id = "rc-0001"`,
		`Framed-IP-Address = 100.64.1.2`,
		`Calling-Station-Id = "aa-bb-cc-11-22-33"`,
		`NAS-IP-Address = 127.0.0.1`,
		`NAS-Port-Id = "ether1.42"`,
		`Delegated-IPv6-Prefix = 2804:db8:ab00::/56`,
		`Acct-Delay-Time = 2`,
	}, "\n")+"\n")
	if !strings.Contains(out, "Received Accounting-Response") {
		t.Fatalf("radclient saw no Accounting-Response:\n%s", out)
	}
	evs := h.events("rc-user")
	if len(evs) != 1 {
		t.Fatalf("stored %d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Kind != "session.start" || ev.SessionID != "rc-0001" || ev.IP != "100.64.1.2" ||
		ev.MAC != "AA:BB:CC:11:22:33" || ev.NAS != "bras-centro" || ev.Detail == nil ||
		ev.Detail.NASIP != "127.0.0.1" || ev.Detail.NASPortID != "ether1.42" ||
		ev.Detail.DelegatedPrefix != "2804:db8:ab00::/56" || ev.Detail.DelaySeconds != 2 {
		t.Errorf("stored %+v %+v", ev, ev.Detail)
	}
	if age := time.Since(ev.At); age < 2*time.Second || age > time.Minute {
		t.Errorf("event time %v is not corrected by Acct-Delay-Time", ev.At)
	}

	// RFC 5997 Status-Server: radclient adds and checks the
	// Message-Authenticator.
	out = run("status", "Message-Authenticator = 0x00\n")
	if !strings.Contains(out, "Received Accounting-Response") {
		t.Fatalf("radclient status saw no Accounting-Response:\n%s", out)
	}
}
