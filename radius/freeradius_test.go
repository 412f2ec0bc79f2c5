package radius_test

import (
	"os"
	"path/filepath"
	"testing"
	"text/template"

	"authwatch/internal/freeradiustest"
)

// freeRADIUS is a real FreeRADIUS (Debian's freeradius package) started by a
// test on loopback ports, with a generated configuration in a temporary
// directory: the upstream of the proxy's interop tests and benchmark.
//
// Users (the files module): alice / alice-pass (answered with
// Framed-IP-Address and Framed-Pool), blocked (always rejected with "cliente
// bloqueado"), devedor / devedor-pass (accepted into the provider's block:
// Mikrotik-Address-List "bloqueados" and Mikrotik-Rate-Limit "1M/1M", as
// MK-Auth answers a customer in arrears), and any other LOGIN with password
// LOGIN-pass. Rejects without
// a Reply-Message of their own get "senha incorreta". Accounting is written
// to the detail file.
type freeRADIUS struct {
	*freeradiustest.Server
	name   string
	auth   string // host:port
	acct   string
	extra  string // host:port of the extra servers' listen (startFreeRADIUSWith)
	secret string
	out    *freeradiustest.Output
}

const freeRADIUSSecret = "upstream-secret"

var radiusdConf = template.Must(template.New("radiusd.conf").Parse(`max_requests = 65536
log {
	destination = stdout
	colourise = no
	auth = {{.AuthLog}}
	auth_badpass = no
	auth_goodpass = no
}
thread pool {
	start_servers = 4
	max_servers = 16
	min_spare_servers = 2
	max_spare_servers = 16
	max_requests_per_server = 0
}
client localhost {
	ipaddr = 127.0.0.1
	secret = {{.Secret}}
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
	detail {
		filename = {{.Dir}}/detail
		escape_filenames = no
		permissions = 0600
		header = "%t"
	}
{{.Modules}}}
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
	preacct {
	}
	accounting {
		detail
	}
	post-auth {
		Post-Auth-Type REJECT {
			if (!&reply:Reply-Message) {
				update reply {
					Reply-Message := "senha incorreta"
				}
			}
		}
	}
}
{{.Sites}}`))

const freeRADIUSUsers = `alice	Cleartext-Password := "alice-pass"
	Framed-IP-Address = 100.64.0.10,
	Framed-Pool = "clientes"

blocked	Cleartext-Password := "blocked-pass", Auth-Type := Reject
	Reply-Message = "cliente bloqueado"

devedor	Cleartext-Password := "devedor-pass"
	Framed-IP-Address = 100.64.0.66,
	Mikrotik-Rate-Limit = "1M/1M 2M/2M 1M/1M 8/8",
	Mikrotik-Address-List = "bloqueados"

DEFAULT	Cleartext-Password := "%{User-Name}-pass"
`

// startFreeRADIUS starts a FreeRADIUS named name and waits until it answers
// Status-Server. authLog writes a line per login (off for benchmarks).
func startFreeRADIUS(t testing.TB, name string, authLog bool) *freeRADIUS {
	t.Helper()
	return startFreeRADIUSWith(t, name, authLog, nil)
}

// freeRADIUSExtra adds to the generated configuration, for a third loopback
// port (f.extra): module definitions and virtual servers.
type freeRADIUSExtra func(port int) (modules, sites string, err error)

// startFreeRADIUSWith is startFreeRADIUS with more modules and servers.
func startFreeRADIUSWith(t testing.TB, name string, authLog bool, extra freeRADIUSExtra) *freeRADIUS {
	t.Helper()
	n := 2
	if extra != nil {
		n = 3
	}
	s := freeradiustest.Start(t, freeradiustest.Config{
		Name: name, Conf: radiusdConf, Ports: n, Secret: freeRADIUSSecret,
		Files: map[string]string{"users": freeRADIUSUsers, "acct_users": ""},
		Data: func(_ string, ports []int) (map[string]any, error) {
			var modules, sites string
			if extra != nil {
				var err error
				if modules, sites, err = extra(ports[2]); err != nil {
					return nil, err
				}
			}
			return map[string]any{"Ports": ports, "Secret": freeRADIUSSecret,
				"AuthLog": map[bool]string{true: "yes", false: "no"}[authLog], "Modules": modules, "Sites": sites}, nil
		},
	})
	f := &freeRADIUS{Server: s, name: name, auth: s.Addrs[0], acct: s.Addrs[1], secret: freeRADIUSSecret, out: s.Out}
	if extra != nil {
		f.extra = s.Addrs[2]
	}
	return f
}

// kill ends it abruptly, as a crash would, and waits for it to be gone.
func (f *freeRADIUS) kill() { f.Kill() }

func (f *freeRADIUS) detail() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "detail"))
	return string(b)
}
