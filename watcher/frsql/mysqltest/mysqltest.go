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
// exits (a small shell watches a pipe from it), so a TestMain is not
// needed; Main stops the server earlier, and suits a binary that uses no
// other such helper:
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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 60 * time.Second

// TimeZone is the test server's time zone (--default-time-zone), as an IANA
// name; the server has no zone tables, so it is given as Offset. São Paulo
// has kept -03:00 all year since 2019.
const (
	TimeZone = "America/Sao_Paulo"
	Offset   = "-03:00"
)

var (
	mu     sync.Mutex
	srv    *server
	srvErr error
	dbs    atomic.Int64
)

type server struct {
	bin   string              // mariadbd (or mysqld)
	dir   string              // temporary directory: data/, the socket, the error log
	runAs *syscall.Credential // nil, or the system user to run as (root only)
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	// janitor's stdin: when this process exits, however, the pipe closes
	// and the janitor stops the server and removes dir.
	janitor *os.File
}

// Main runs the tests and stops the server, if one was started.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if srv != nil {
		srv.stop()
		os.RemoveAll(srv.dir)
	}
	mu.Unlock()
	os.Exit(code)
}

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
	s := get(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	Exec(t, s.dsn("root", ""), "CREATE DATABASE "+name)
	return DB{Name: name, RootDSN: s.dsn("root", name), socket: s.socket()}
}

// Stop stops the server at once, as an outage would.
func Stop(t testing.TB) {
	t.Helper()
	if err := get(t).stop(); err != nil {
		t.Fatal(err)
	}
}

// Start starts the server again after Stop.
func Start(t testing.TB) {
	t.Helper()
	if err := get(t).start(); err != nil {
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

func get(t testing.TB) *server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil && srvErr == nil {
		srv, srvErr = startServer()
	}
	if srvErr != nil {
		if errors.Is(srvErr, errNoBinaries) && os.Getenv("CI") == "" {
			t.Skipf("mysqltest: %v (install Debian's mariadb-server package)", srvErr)
		}
		t.Fatalf("mysqltest: %v", srvErr)
	}
	return srv
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
	// A short path: the socket's must fit in 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "mysqltest-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no mysql user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.runAs = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	out, err := s.command(install, "--no-defaults", "--datadir="+filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %v\n%s", filepath.Base(install), err, tail(string(out), 2000))
	}
	if err := s.startJanitor(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// startJanitor starts the shell that cleans up after this process exits.
// It reads its stdin, a pipe whose other end only this process holds, until
// end of file.
func (s *server) startJanitor() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	script := `while read -r _; do :; done
pid=$(cat "$1/mariadbd.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$1"`
	cmd := exec.Command("/bin/sh", "-c", script, "mysqltest-janitor", s.dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start the janitor: %w", err)
	}
	go cmd.Wait()
	s.janitor = w
	return nil
}

func (s *server) command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = s.dir
	// Its own process group, so that the terminal's signals reach the
	// test binary only; as root, the mysql user.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.runAs}
	return cmd
}

func (s *server) socket() string { return filepath.Join(s.dir, "sock") }

func (s *server) start() error {
	if s.cmd != nil {
		return errors.New("mysqltest: server already running")
	}
	logFile := filepath.Join(s.dir, "error.log")
	cmd := s.command(s.bin, "--no-defaults",
		"--datadir="+filepath.Join(s.dir, "data"),
		"--socket="+s.socket(),
		"--pid-file="+filepath.Join(s.dir, "mariadbd.pid"),
		"--log-error="+logFile,
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
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(s.bin), err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)

	deadline := time.Now().Add(startTimeout)
	for {
		if err := s.ping(); err == nil {
			return nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(logFile)
			s.cmd = nil
			return fmt.Errorf("%s exited at start:\n%s", filepath.Base(s.bin), tail(string(b), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			b, _ := os.ReadFile(logFile)
			return fmt.Errorf("%s did not accept connections within %v:\n%s", filepath.Base(s.bin), startTimeout, tail(string(b), 2000))
		}
	}
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

// stop ends the server with SIGTERM (a clean shutdown), and SIGKILL if it
// takes too long.
func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("mysqltest: server did not stop within 30s; killed")
	}
}

func (s *server) dsn(user, db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = user, "unix", s.socket(), db
	c.MultiStatements = false
	return c.FormatDSN()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
