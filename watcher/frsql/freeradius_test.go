package frsql_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"authwatch/internal/freeradiustest"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// The end-to-end test: a real FreeRADIUS (Debian's freeradius and
// freeradius-mysql packages) with rlm_sql and FreeRADIUS's own MySQL schema
// and queries (as installed under /etc/freeradius), writing radpostauth and
// radacct in the test's MariaDB while radclient plays the NAS; the source
// reads what FreeRADIUS wrote.
//
// The configuration is generated whole, with only the modules needed
// (files, pap, sql), so that it starts fast and does not depend on the
// host's /etc/freeradius beyond the SQL files.
var sqlRadiusdConf = template.Must(template.New("radiusd.conf").Parse(`max_requests = 1024
log {
	destination = files
	file = {{.Dir}}/radius.log
	colourise = no
	auth = yes
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
	# %{tolower:…} and %{md5:…}, which the queries use.
	expr {
	}
	files {
		filename = {{.Dir}}/users
		acctusersfile = {{.Dir}}/acct_users
	}
	sql {
		dialect = "mysql"
		driver = "rlm_sql_mysql"
		mysql {
			warnings = auto
		}
		server = "localhost"
		login = "root"
		password = ""
		radius_db = "{{.DB}}"
		acct_table1 = "radacct"
		acct_table2 = "radacct"
		postauth_table = "radpostauth"
		authcheck_table = "radcheck"
		groupcheck_table = "radgroupcheck"
		authreply_table = "radreply"
		groupreply_table = "radgroupreply"
		usergroup_table = "radusergroup"
		read_groups = no
		read_clients = no
		client_table = "nas"
		group_attribute = "SQL-Group"
		pool {
			start = 1
			min = 1
			max = 4
			spare = 1
			uses = 0
			retry_delay = 1
			lifetime = 0
			idle_timeout = 60
		}
		$INCLUDE {{.Queries}}
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = {{index .Ports 0}}
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = {{index .Ports 1}}
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
	preacct {
		# What policy.d/accounting's acct_unique does.
		update request {
			&Acct-Unique-Session-Id := "%{md5:%{User-Name},%{Acct-Session-ID},%{NAS-IP-Address},%{NAS-Port}}"
		}
	}
	accounting {
		sql
	}
	post-auth {
		sql
		Post-Auth-Type REJECT {
			sql
		}
	}
}
`))

const (
	sqlRadiusSecret = "testing123"
	frDir           = "/etc/freeradius/3.0/mods-config/sql/main/mysql"
)

// need returns path, skipping the test when it is missing (failing in CI,
// where the packages are installed).
func need(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s (Debian's %s) is required in CI: %v", path, pkg, err)
		}
		t.Skipf("%s not installed (Debian's %s): %v", path, pkg, err)
	}
	return path
}

func TestFreeRADIUS(t *testing.T) {
	freeradiustest.Path(t)
	radclient := radiustest.NeedCommand(t, "radclient")
	need(t, "/usr/lib/freeradius/rlm_sql_mysql.so", "freeradius-mysql")
	queries := need(t, filepath.Join(frDir, "queries.conf"), "freeradius")
	schema, err := os.ReadFile(need(t, filepath.Join(frDir, "schema.sql"), "freeradius"))
	if err != nil {
		t.Fatal(err)
	}
	// FreeRADIUS's own schema, as a provider would have loaded it.
	f, db := mysqlFixture(t, string(schema))

	// rlm_sql_mysql has no socket setting; libmariadb reads one from
	// $MYSQL_HOME/my.cnf.
	myCnf := "[client]\nsocket = " + db.Socket() + "\n"
	fr := freeradiustest.Start(t, freeradiustest.Config{
		Name: "frsql", Conf: sqlRadiusdConf, Ports: 2, Log: "radius.log", Timeout: 15 * time.Second,
		Files: map[string]string{"users": "maria\tCleartext-Password := \"Maria#2026-ok\"\n", "acct_users": "", "my.cnf": myCnf},
		Data: func(_ string, ports []int) (map[string]any, error) {
			return map[string]any{"DB": db.Name, "Queries": queries, "Ports": ports, "Secret": sqlRadiusSecret}, nil
		},
		Env: func(dir string) []string {
			// FreeRADIUS writes authdate in its local time: the database's
			// zone.
			return []string{"MYSQL_HOME=" + dir, "MARIADB_HOME=" + dir, "TZ=" + zone}
		},
	})
	authPort, acctPort := fr.Ports[0], fr.Ports[1]

	h := run(t, f, "", opts{})
	send := func(port int, kind, attrs, want string) {
		t.Helper()
		c := exec.Command(radclient, "-r", "2", "-t", "3", fmt.Sprintf("127.0.0.1:%d", port), kind, sqlRadiusSecret)
		c.Stdin = strings.NewReader(attrs + "\n")
		b, _ := c.CombinedOutput() // exit status 1 on a reject
		if !strings.Contains(string(b), want) {
			t.Fatalf("radclient %s: no %q:\n%s", attrs, want, b)
		}
	}
	nas := `NAS-IP-Address = 10.0.0.1, NAS-Port = 15728640, Calling-Station-Id = "18:FD:74:22:23:B7"`
	before := time.Now().Add(-time.Second)
	send(authPort, "auth", `User-Name = "maria", User-Password = "Maria#2026-ok", `+nas, "Received Access-Accept")
	send(authPort, "auth", `User-Name = "maria", User-Password = "wrong-Pass-1", `+nas, "Received Access-Reject")
	evs := h.next(2, 10*time.Second)
	if evs[0].Kind != watcher.AuthAccept || evs[1].Kind != watcher.AuthReject || evs[1].Reason != "rejected by server" {
		t.Fatalf("auth events:\n%s", dump(evs))
	}
	for _, ev := range evs {
		if ev.Login != "maria" || ev.At.Before(before.Truncate(time.Second)) || ev.At.After(time.Now().Add(time.Second)) {
			t.Errorf("auth event (authdate read in %s): %s", zone, dump([]watcher.Event{ev}))
		}
	}

	session := nas + `, User-Name = "maria", Acct-Session-Id = "81a00007", Framed-IP-Address = 100.64.0.9, NAS-Port-Id = "ether2"`
	send(acctPort, "acct", session+`, Acct-Status-Type = Start`, "Received Accounting-Response")
	ev := h.next(1, 10*time.Second)[0]
	if ev.Kind != watcher.SessionStart || ev.SessionID != "81a00007" || ev.NAS != "bras-centro" || ev.MAC != "18:FD:74:22:23:B7" || ev.IP != "100.64.0.9" {
		t.Fatalf("start: %s", dump([]watcher.Event{ev}))
	}
	time.Sleep(1100 * time.Millisecond) // acctupdatetime has whole seconds
	send(acctPort, "acct", session+`, Acct-Status-Type = Interim-Update, Acct-Session-Time = 60, Acct-Input-Octets = 1000, Acct-Input-Gigawords = 1, Acct-Output-Octets = 5000`, "Received Accounting-Response")
	ev = h.next(1, 10*time.Second)[0]
	if ev.Kind != watcher.SessionUpdate || ev.Detail == nil || ev.Detail.InputOctets != 1<<32+1000 || ev.Detail.OutputOctets != 5000 || ev.Detail.SessionTime != 60 {
		t.Fatalf("interim: %s", dump([]watcher.Event{ev}))
	}
	send(acctPort, "acct", session+`, Acct-Status-Type = Stop, Acct-Session-Time = 75, Acct-Terminate-Cause = Lost-Carrier`, "Received Accounting-Response")
	ev = h.next(1, 10*time.Second)[0]
	if ev.Kind != watcher.SessionStop || ev.Reason != "Lost-Carrier" || ev.SessionID != "81a00007" {
		t.Fatalf("stop: %s", dump([]watcher.Event{ev}))
	}
	if c, _ := h.state.Customer("maria"); c.Online || c.LastAuth == nil || c.LastAuth.Accepted {
		t.Errorf("state: %+v", c)
	}
	h.stop()

	// FreeRADIUS did keep the passwords in radpostauth; authwatch never
	// read them.
	var stored int
	if err := f.admin.Get(&stored, "SELECT COUNT(*) FROM radpostauth WHERE pass = 'wrong-Pass-1'"); err != nil || stored != 1 {
		t.Fatalf("radpostauth does not hold the password as expected (%d, %v): the test proves nothing", stored, err)
	}
	if s := dump(h.stored()) + h.logs.String(); strings.Contains(s, "wrong-Pass-1") || strings.Contains(s, "Maria#2026") {
		t.Error("a password reached the store or the log")
	}
}
