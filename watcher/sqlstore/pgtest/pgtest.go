// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// postgresql package (initdb, pg_ctl), started once per test binary in a
// temporary directory, listening on a Unix socket there only, and removed
// when the tests end. Each test gets a fresh database from DSN.
//
// PostgreSQL refuses to run as root; as root (CI) the server runs as the
// postgres system user through runuser. Without the binaries a test is
// skipped, or fails when the environment variable CI is set.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.DSN(t)
//		...
//	}
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// server is the one server of this test binary.
var (
	mu     sync.Mutex
	srv    *server
	srvErr error
	dbs    atomic.Int64
)

type server struct {
	bin   string // directory of initdb, pg_ctl, postgres
	dir   string // temporary directory: data/ and the socket
	runAs string // "" or the system user to run as (root only)
	port  int
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

// Available reports whether PostgreSQL's binaries were found (the server is
// not started).
func Available() bool {
	_, err := binDir()
	return err == nil
}

// DSN creates a fresh database on the test server (starting it on first
// use) and returns its connection string.
func DSN(t testing.TB) string {
	t.Helper()
	s := get(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s.dsn(name)
}

// Stop stops the server at once (pg_ctl stop -m fast), as an outage would.
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

// Exec runs sql on the server's postgres database as the superuser (e.g.
// pg_terminate_backend) and returns the number of rows it touched or
// returned.
func Exec(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	return ExecDB(t, get(t).dsn("postgres"), sql, args...)
}

// ExecDB runs sql on the database of dsn (one DSN returned) and returns the
// number of rows it touched or returned.
func ExecDB(t testing.TB, dsn, sql string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
	return tag.RowsAffected()
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
			t.Skipf("pgtest: %v (install Debian's postgresql package)", srvErr)
		}
		t.Fatalf("pgtest: %v", srvErr)
	}
	return srv
}

var errNoBinaries = errors.New("PostgreSQL server binaries not found")

// binDir finds initdb: Debian keeps it in /usr/lib/postgresql/VERSION/bin
// (newest version first), other systems on PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNoBinaries
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func startServer() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	// A short path: the socket's must fit in 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: dir, port: 5432}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.runAs = "postgres"
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("listen_addresses = ''\nunix_socket_directories = '%s'\nport = %d\nmax_connections = 200\nshared_buffers = 64MB\nfsync = on\n", dir, s.port)
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *server) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *server) start() error {
	logFile := filepath.Join(s.dir, "server.log")
	if out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", filepath.Join(s.dir, "data"), "-l", logFile); err != nil {
		b, _ := os.ReadFile(logFile)
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(string(b), 2000))
	}
	return nil
}

func (s *server) stop() error {
	if out, err := s.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", filepath.Join(s.dir, "data")); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, db)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
