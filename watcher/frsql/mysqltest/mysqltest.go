// Package mysqltest runs a throwaway MariaDB (or MySQL) server for tests:
// Debian's mariadb-server package (mariadb-install-db, mariadbd), started
// once per test binary in a temporary directory, listening on a Unix socket
// there only (no TCP port), and removed when the tests end. Each test gets
// a fresh database from DSN.
//
// mariadbd refuses to run as root; as root (CI) the server runs as the
// mysql system user. Grants are on (the tests revoke them), and root logs in
// over the socket without a password. The server's time zone is TimeZone,
// not UTC, so that tests of time handling mean something. Without the
// binaries a test is skipped, or fails when the environment variable CI is
// set.
//
// The server and its directory go when the test binary exits, however it
// exits (internal/testserver's janitor, a small shell, watches a pipe from
// it), so a TestMain is not needed; Main stops the server earlier (and any
// other testserver, such as pgtest's):
//
//	func TestMain(m *testing.M) { mysqltest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		db := mysqltest.Database(t)
//		mysqltest.Exec(t, db.RootDSN, "CREATE TABLE …")
//		...
//	}
package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"authwatch/internal/testserver"
)

// TimeZone is the test server's time zone (--default-time-zone), as an IANA
// name; the server has no zone tables, so it is given as Offset. São Paulo
// has kept -03:00 all year since 2019.
const (
	TimeZone = "America/Sao_Paulo"
	Offset   = "-03:00"
)

// the one server of this test binary.
var (
	once = testserver.Once[*server]{Name: "mysqltest", Missing: errNoBinaries,
		Hint: "install Debian's mariadb-server package", New: startServer}
	dbs atomic.Int64
)

type server struct {
	*testserver.Server
	bin string // mariadbd (or mysqld)
}

// Main runs the tests and stops the server, if one was started (and any
// other testserver).
func Main(m *testing.M) { testserver.Main(m) }

// Available reports whether the server's binaries were found (the server is
// not started).
func Available() bool {
	_, _, err := binaries()
	return err == nil
}

// DB is one fresh database on the test server.
type DB struct {
	Name string
	// RootDSN connects to the database as root, for the test to create
	// tables, insert rows and manage users.
	RootDSN string
	socket  string
}

// Socket is the server's Unix socket, for other clients (libmariadb reads
// it from the environment variable MYSQL_UNIX_PORT).
func (d DB) Socket() string { return d.socket }

// DSN returns a go-sql-driver DSN for user and password on the database.
func (d DB) DSN(user, password string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, password, "unix", d.socket, d.Name
	return c.FormatDSN()
}

// Database creates a fresh database on the test server (starting it on
// first use).
func Database(t testing.TB) DB {
	t.Helper()
	s := once.Get(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	Exec(t, s.dsn("root", ""), "CREATE DATABASE "+name)
	return DB{Name: name, RootDSN: s.dsn("root", name), socket: s.socket()}
}

// Stop stops the server at once, as an outage would.
func Stop(t testing.TB) {
	t.Helper()
	if err := once.Get(t).Stop(); err != nil {
		t.Fatal(err)
	}
}

// Start starts the server again after Stop.
func Start(t testing.TB) {
	t.Helper()
	if err := once.Get(t).start(); err != nil {
		t.Fatal(err)
	}
}

// Exec runs statements (separated by ";" at the end of a line) on the
// database of dsn, failing the test on the first error.
func Exec(t testing.TB, dsn, statements string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("mysqltest: open: %v", err)
	}
	defer db.Close()
	for _, stmt := range split(statements) {
		if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
			t.Fatalf("mysqltest: %s: %v", stmt, err)
		}
	}
}

// split cuts a script at the semicolons that end a line.
func split(script string) []string {
	var out []string
	for _, s := range strings.SplitAfter(script, ";\n") {
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";"))
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var errNoBinaries = errors.New("MariaDB server binaries (mariadbd, mariadb-install-db) not found")

// binaries finds the server and its installer: MariaDB's names first, then
// MySQL's. Debian keeps mariadbd in /usr/sbin, which is not on every PATH.
func binaries() (server, install string, err error) {
	look := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
			for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin"} {
				p := filepath.Join(dir, n)
				if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
					return p
				}
			}
		}
		return ""
	}
	server, install = look("mariadbd", "mysqld"), look("mariadb-install-db", "mysql_install_db")
	if server == "" || install == "" {
		return "", "", errNoBinaries
	}
	return server, install, nil
}

func startServer() (*server, error) {
	bin, install, err := binaries()
	if err != nil {
		return nil, err
	}
	ts, err := testserver.New(testserver.Config{
		Prefix: "mysqltest-", User: "mysql", PIDFile: "mariadbd.pid", Log: "error.log",
	})
	if err != nil {
		return nil, err
	}
	s := &server{Server: ts, bin: bin}
	if err := s.Run(install, "--no-defaults", "--datadir="+filepath.Join(s.Dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"); err != nil {
		s.Remove()
		return nil, err
	}
	if err := s.start(); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

func (s *server) socket() string { return filepath.Join(s.Dir, "sock") }

// start runs the server and waits until it accepts connections.
func (s *server) start() error {
	cmd := s.Command(s.bin, "--no-defaults",
		"--datadir="+filepath.Join(s.Dir, "data"),
		"--socket="+s.socket(),
		"--pid-file="+filepath.Join(s.Dir, "mariadbd.pid"),
		"--log-error="+filepath.Join(s.Dir, "error.log"),
		"--skip-networking",
		"--skip-name-resolve",
		"--skip-log-bin",
		"--performance-schema=OFF",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M",
		// Durability is not what these tests are about; speed is.
		"--innodb-flush-log-at-trx-commit=2",
		"--max-connections=200",
		"--default-time-zone="+Offset,
	)
	return s.Start(cmd, s.ping)
}

func (s *server) ping() error {
	db, err := sql.Open("mysql", s.dsn("root", ""))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func (s *server) dsn(user, db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = user, "unix", s.socket(), db
	c.MultiStatements = false
	return c.FormatDSN()
}
