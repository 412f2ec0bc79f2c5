// Package testserver is the process machinery of the throwaway database
// servers of authwatch's tests (pgtest, mysqltest): a short temporary
// directory, the server run in the foreground as a system user when the
// tests run as root (database servers refuse root), waiting until it
// accepts connections, stopping it with a signal, and cleaning up when the
// test binary exits, however it exits.
//
// Each server package starts one server per test binary with Once; Main
// (or the package's own Main calling it) stops all of them.
package testserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config describes a server's process.
type Config struct {
	// Prefix names the temporary directory (/tmp/PREFIX…): short, for the
	// Unix socket's path must fit in 107 bytes.
	Prefix string
	// User is the system user to run as when the tests run as root.
	User string
	// PIDFile is the file, in the directory, whose first line is the
	// server's pid, for the cleanup after the test binary exits.
	PIDFile string
	// Log is the server's log file, in the directory: its end is shown
	// when the server does not start. With CaptureOutput the server's
	// stdout and stderr are appended to it.
	Log           string
	CaptureOutput bool
	// Stop is the signal that shuts the server down cleanly (SIGTERM when
	// zero).
	Stop syscall.Signal
	// StartTimeout bounds the wait for connections (60s when zero).
	StartTimeout time.Duration
}

// Server is a server's directory and, while it runs, its process.
type Server struct {
	Dir string // the temporary directory

	cfg   Config
	runAs *syscall.Credential // nil, or the system user (root only)
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	// janitor's stdin: when this process exits, however, the pipe closes
	// and the janitor stops the server and removes Dir.
	janitor *os.File
}

var (
	allMu sync.Mutex
	all   []*Server
)

// New creates the temporary directory (owned by c.User when root) and the
// janitor that removes it, with the server, when this process exits.
func New(c Config) (*Server, error) {
	if c.Stop == 0 {
		c.Stop = syscall.SIGTERM
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
	dir, err := os.MkdirTemp("/tmp", c.Prefix)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, cfg: c}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(c.User)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no %s user to run the server as: %w", c.User, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.runAs = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := s.startJanitor(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	allMu.Lock()
	all = append(all, s)
	allMu.Unlock()
	return s, nil
}

// startJanitor starts the shell that cleans up after this process exits.
// It reads its stdin, a pipe whose other end only this process holds, until
// end of file.
func (s *Server) startJanitor() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	script := `while read -r _; do :; done
pid=$(head -n 1 "$2" 2>/dev/null)
if [ -n "$pid" ] && kill -"$3" "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$1"`
	sig := strconv.Itoa(int(s.cfg.Stop))
	cmd := exec.Command("/bin/sh", "-c", script, s.cfg.Prefix+"janitor", s.Dir, filepath.Join(s.Dir, s.cfg.PIDFile), sig)
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

// Command is the program at path run in the directory, in its own process
// group (the terminal's signals reach the test binary only) and, as root,
// as the system user.
func (s *Server) Command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.runAs}
	return cmd
}

// Run runs a command to its end (initdb…), returning its output in the
// error.
func (s *Server) Run(path string, args ...string) error {
	out, err := s.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(path), err, Tail(string(out), 2000))
	}
	return nil
}

// Start starts the server, cmd (from Command), and waits until ready
// returns nil.
func (s *Server) Start(cmd *exec.Cmd, ready func() error) error {
	if s.cmd != nil {
		return errors.New("server already running")
	}
	name := filepath.Base(cmd.Path)
	if s.cfg.CaptureOutput {
		f, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close() // the child has its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)

	deadline := time.Now().Add(s.cfg.StartTimeout)
	for {
		if err := ready(); err == nil {
			return nil
		}
		select {
		case <-s.done:
			s.cmd = nil
			return fmt.Errorf("%s exited at start:\n%s", name, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("%s did not accept connections within %v:\n%s", name, s.cfg.StartTimeout, s.logTail())
		}
	}
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, s.cfg.Log) }

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath())
	return Tail(string(b), 2000)
}

// Stop shuts the server down with the configured signal, and SIGKILL if it
// takes more than 30s.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd = nil
	cmd.Process.Signal(s.cfg.Stop)
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("server did not stop within 30s; killed")
	}
}

// Remove stops the server and removes its directory (Main does it for
// every server).
func (s *Server) Remove() {
	s.Stop()
	os.RemoveAll(s.Dir)
	s.janitor.Close()
}

// Main runs the tests, then stops every server started and removes their
// directories.
func Main(m *testing.M) {
	code := m.Run()
	allMu.Lock()
	for _, s := range all {
		s.Remove()
	}
	all = nil
	allMu.Unlock()
	os.Exit(code)
}

// Once is the one server of a test binary, started on first use.
type Once[S any] struct {
	Name string // the package, for messages: "pgtest"
	// Missing is the error of New when the server's binaries are not
	// installed: then tests are skipped, unless CI is set.
	Missing error
	Hint    string // e.g. "install Debian's postgresql package"
	New     func() (S, error)

	mu      sync.Mutex
	started bool
	srv     S
	err     error
}

// Get returns the server, starting it on first use; it skips or fails t
// when it could not start.
func (o *Once[S]) Get(t testing.TB) S {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.started {
		o.started = true
		o.srv, o.err = o.New()
	}
	if o.err != nil {
		if errors.Is(o.err, o.Missing) && os.Getenv("CI") == "" {
			t.Skipf("%s: %v (%s)", o.Name, o.err, o.Hint)
		}
		t.Fatalf("%s: %v", o.Name, o.err)
	}
	return o.srv
}

// Tail is the end of s, at most n bytes.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
