// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// postgresql package (initdb, postgres), started once per test binary in a
// temporary directory, listening on a Unix socket there only, and removed
// when the tests end (or, by internal/testserver's janitor, when the test
// binary exits otherwise). Each test gets a fresh database from DSN.
//
// PostgreSQL refuses to run as root; as root (CI) the server runs as the
// postgres system user. Without the binaries a test is skipped, or fails
// when the environment variable CI is set.
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
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"authwatch/internal/testserver"
)

// the one server of this test binary.
var (
	once = testserver.Once[*server]{Name: "pgtest", Missing: errNoBinaries,
		Hint: "install Debian's postgresql package", New: startServer}
	dbs atomic.Int64
)

type server struct {
	*testserver.Server
	bin  string // directory of initdb, postgres
	port int
}

// Main runs the tests and stops the server, if one was started (and any
// other testserver).
func Main(m *testing.M) { testserver.Main(m) }

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
	s := once.Get(t)
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

// Stop stops the server at once (a fast shutdown, as pg_ctl stop -m fast
// does), as an outage would.
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

// Exec runs sql on the server's postgres database as the superuser (e.g.
// pg_terminate_backend) and returns the number of rows it touched or
// returned.
func Exec(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	return ExecDB(t, once.Get(t).dsn("postgres"), sql, args...)
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
	ts, err := testserver.New(testserver.Config{
		Prefix: "pgtest-", User: "postgres", PIDFile: "data/postmaster.pid",
		Log: "server.log", CaptureOutput: true,
		Stop: syscall.SIGINT, // fast shutdown
	})
	if err != nil {
		return nil, err
	}
	s := &server{Server: ts, bin: bin, port: 5432}
	data := filepath.Join(s.Dir, "data")
	if err := s.Run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		s.Remove()
		return nil, err
	}
	conf := fmt.Sprintf("listen_addresses = ''\nunix_socket_directories = '%s'\nport = %d\nmax_connections = 200\nshared_buffers = 64MB\nfsync = on\n", s.Dir, s.port)
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		s.Remove()
		return nil, err
	}
	if err := s.start(); err != nil {
		s.Remove()
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

// start runs postgres in the foreground and waits until it accepts
// connections.
func (s *server) start() error {
	cmd := s.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.Dir, "data"))
	return s.Start(cmd, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.Dir, s.port, db)
}
