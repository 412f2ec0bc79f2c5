package frlog_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"authwatch/internal/freeradiustest"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
	"authwatch/watcher/frlog"
)

// The end-to-end test: a real FreeRADIUS (Debian's freeradius package),
// started on loopback ports with a generated configuration that logs every
// authentication to radius.log with the passwords in it (auth_badpass and
// auth_goodpass), and radclient as the NAS.
//
// The configuration is generated whole rather than copied from
// /etc/freeradius: the stock one loads EAP with certificates and a dozen
// modules, takes seconds to start and depends on the host's setup; these
// few modules are what an ISP's authentication uses (files, pap, chap,
// mschap, a session check for Simultaneous-Use).
var radiusdConf = template.Must(template.New("radiusd.conf").Parse(`max_requests = 1024
log {
	destination = files
	file = {{.Dir}}/radius.log
	colourise = no
	auth = yes
	auth_badpass = yes
	auth_goodpass = yes
}
thread pool {
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 4
	max_requests_per_server = 0
}
client bras1 {
	ipaddr = 127.0.0.1
	secret = {{.Secret}}
	shortname = bras1
	nastype = other
}
modules {
	pap {
	}
	chap {
	}
	mschap {
	}
	files {
		filename = {{.Dir}}/users
		acctusersfile = {{.Dir}}/acct_users
	}
	# Stands in for radutmp or SQL session counting: every session check
	# finds one session open, as when a Stop was lost.
	always already_online {
		rcode = ok
		simulcount = 1
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = {{.AuthPort}}
	}
	authorize {
		chap
		mschap
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type CHAP {
			chap
		}
		Auth-Type MS-CHAP {
			mschap
		}
	}
	session {
		already_online
	}
	post-auth {
	}
}
`))

// The customers: maria may log in, preso (stuck) is always already online.
const radiusUsers = `maria	Cleartext-Password := "Maria#2026-ok"
preso	Cleartext-Password := "Preso/pass-77", Simultaneous-Use := 1
`

const radiusSecret = "testing123"

type freeRADIUS struct {
	*freeradiustest.Server
	log, auth string
}

func startFreeRADIUS(t *testing.T) *freeRADIUS {
	t.Helper()
	s := freeradiustest.Start(t, freeradiustest.Config{
		Name: "frlog", Conf: radiusdConf, Log: "radius.log",
		Files: map[string]string{"users": radiusUsers, "acct_users": ""},
		Data: func(_ string, ports []int) (map[string]any, error) {
			return map[string]any{"AuthPort": ports[0], "Secret": radiusSecret}, nil
		},
	})
	return &freeRADIUS{Server: s, log: s.LogPath(), auth: s.Addrs[0]}
}

// hup makes FreeRADIUS reopen its log, as logrotate's postrotate does.
func (f *freeRADIUS) hup(t *testing.T) {
	t.Helper()
	if err := f.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// attempt is one Access-Request radclient sends, and what it must become.
type attempt struct {
	user, pass string
	port       int
	mac        string // Calling-Station-Id as the NAS sends it
	kind       watcher.Kind
	reason     string
}

// send has radclient, as the NAS, send one PAP Access-Request and wait for
// the answer.
func send(t *testing.T, radclient string, f *freeRADIUS, a attempt) {
	t.Helper()
	attrs := fmt.Sprintf("User-Name = %q, User-Password = %q, NAS-Port = %d, Calling-Station-Id = %q", a.user, a.pass, a.port, a.mac)
	cmd := exec.Command(radclient, "-r", "2", "-t", "2", f.auth, "auth", radiusSecret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, _ := cmd.CombinedOutput() // exit status 1 on a reject
	want := "Received Access-Accept"
	if a.kind == watcher.AuthReject {
		want = "Received Access-Reject"
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("radclient %s: no %q:\n%s", attrs, want, out)
	}
}

func TestFreeRADIUS(t *testing.T) {
	radclient := radiustest.NeedCommand(t, "radclient")
	fr := startFreeRADIUS(t)
	db := filepath.Join(t.TempDir(), "authwatch.db")
	h := start(t, fr.log, db, options{})

	var sent []attempt
	do := func(a attempt) {
		t.Helper()
		send(t, radclient, fr, a)
		sent = append(sent, a)
	}
	ok := func(n int) attempt {
		return attempt{user: "maria", pass: "Maria#2026-ok", port: 15728640 + n, mac: "18-fd-74-22-23-b7", kind: watcher.AuthAccept}
	}
	bad := func(n int) attempt {
		return attempt{user: "maria", pass: fmt.Sprintf("Wr0ng/pass-%d", n), port: 15728640 + n, mac: "18-fd-74-22-23-b7", kind: watcher.AuthReject, reason: frlog.ReasonWrongPassword}
	}
	stuck := attempt{user: "preso", pass: "Preso/pass-77", port: 7, mac: "AA:BB:CC:DD:EE:01", kind: watcher.AuthReject, reason: frlog.ReasonMultipleLogins}

	do(ok(1))
	do(bad(2))
	do(stuck)
	h.waitLogins(len(sent))

	// logrotate with create: rename, then HUP. The line written between
	// the two goes to the old file.
	if err := os.Rename(fr.log, fr.log+".1"); err != nil {
		t.Fatal(err)
	}
	do(bad(3))
	fr.hup(t)
	time.Sleep(300 * time.Millisecond) // the HUP is handled asynchronously
	do(ok(4))
	do(bad(5))
	h.waitLogins(len(sent))

	// copytruncate, Debian's logrotate default for radius.log.
	if err := os.Rename(fr.log+".1", fr.log+".2"); err != nil {
		t.Fatal(err)
	}
	copyTruncate(t, fr.log, fr.log+".1")
	do(bad(6))
	do(ok(7))
	h.waitLogins(len(sent))

	// authwatch restarts; what happened meanwhile is recorded once.
	h.stop()
	do(bad(8))
	do(stuck)
	h = start(t, fr.log, db, options{})
	do(ok(9))
	h.waitLogins(len(sent))

	evs := h.events()
	if len(evs) != len(sent) {
		t.Fatalf("got %d events for %d attempts", len(evs), len(sent))
	}
	for i, a := range sent {
		ev := evs[i]
		if ev.Kind != a.kind || ev.Login != a.user || ev.Reason != a.reason || ev.NAS != "bras-centro" ||
			ev.MAC != watcher.NormalizeMAC(a.mac) || ev.Source != "freeradius:radius-1" {
			t.Errorf("attempt %d (%s %s): got %+v", i, a.user, a.kind, ev)
		}
		if ev.Detail == nil || ev.Detail.Attributes["NAS-Port"] != fmt.Sprint(a.port) {
			t.Errorf("attempt %d: detail %+v", i, ev.Detail)
		}
		if d := time.Since(ev.At); d < 0 || d > time.Minute {
			t.Errorf("attempt %d: at %v", i, ev.At)
		}
		if a.reason == frlog.ReasonMultipleLogins && ev.Detail.Attributes[frlog.HintAttribute] != frlog.HintMultipleLogins {
			t.Errorf("attempt %d: no multiple-logins hint: %+v", i, ev.Detail)
		}
	}
	st := h.src.Status()
	if st.Merged != 1 || st.Unknown != 0 {
		// One "Multiple logins" after the restart; the one before was
		// merged by the first run.
		t.Errorf("status %+v", st)
	}
	h.stop()

	// FreeRADIUS did write the passwords; authwatch kept none of them.
	logs, _ := os.ReadFile(fr.log)
	if !strings.Contains(string(logs), "Maria#2026-ok") {
		t.Fatalf("radius.log has no passwords: is auth_goodpass on?\n%s", logs)
	}
	secrets := []string{"Maria#2026-ok", "Preso/pass-77", "pass-77"}
	for _, a := range sent {
		secrets = append(secrets, a.pass)
	}
	assertNoSecrets(t, h, secrets...)
}
