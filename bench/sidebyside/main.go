// Command sidebyside is the driver behind bench/run.sh: it measures authwatch
// and FreeRADIUS on this machine in one run, with `authwatch load` as the
// NAS fleet, and writes the tables into docs/BENCHMARKS.md.
//
// It is run by hand (bench/run.sh), never by CI:
//
//	go run ./bench/sidebyside -authwatch /tmp/authwatch -out docs/BENCHMARKS.md
//
// Every server is started fresh (new temporary directory, new database or
// detail file) for every measurement, as a foreground child on loopback
// ports, and stopped after it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"authwatch/internal/load"
)

// bench holds what every measurement shares.
type bench struct {
	ctx    context.Context
	bin    string // the authwatch binary
	dir    string // scratch directory, removed at the end unless -keep
	secret string
	step   time.Duration
	log    io.Writer
	cmds   []string // the load commands run, for the record
}

func main() {
	var (
		bin   = flag.String("authwatch", "", "authwatch binary to measure (and to generate load with)")
		out   = flag.String("out", "docs/BENCHMARKS.md", "markdown file to write the results into (between the bench markers)")
		step  = flag.Duration("step", 10*time.Second, "duration of each load step")
		only  = flag.String("only", "accounting,websocket,memory", "measurements to run")
		keep  = flag.Bool("keep", false, "keep the scratch directory (configs, logs, databases)")
		ratio = flag.Float64("sustain", 0.97, "a rate is sustained when this fraction of it is acked per second, with nothing lost and ack p99 under 10 ms")
	)
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "sidebyside: -authwatch BIN is required (bench/run.sh builds it)")
		os.Exit(2)
	}
	sustainFraction = *ratio
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "authwatch-bench-")
	if err != nil {
		fatal(err)
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "scratch directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	b := &bench{ctx: ctx, bin: abs, dir: dir, secret: "bench-secret-" + strconv.FormatInt(time.Now().Unix()%100000, 10), step: *step, log: os.Stderr}

	res := results{Machine: machine(b.bin), Started: time.Now().UTC(), Step: b.step}
	for _, what := range strings.Split(*only, ",") {
		var err error
		switch strings.TrimSpace(what) {
		case "accounting":
			res.Accounting, err = b.accounting()
		case "websocket":
			res.WS, err = b.websocket()
		case "memory":
			res.Memory, err = b.memory()
		default:
			err = fmt.Errorf("unknown measurement %q", what)
		}
		if err != nil {
			fatal(err)
		}
		if ctx.Err() != nil {
			fatal(ctx.Err())
		}
	}
	res.Took = time.Since(res.Started).Round(time.Second)
	res.Commands = b.cmds
	md := res.markdown()
	if err := writeBetweenMarkers(*out, md); err != nil {
		fatal(err)
	}
	fmt.Println(md)
	fmt.Fprintf(os.Stderr, "written to %s\n", *out)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "sidebyside:", err)
	os.Exit(1)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// proc is a server running as a child process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	radius  string // accounting address
	http    string // authwatch's HTTP address
	done    chan struct{}
	conf    string // authwatch's config file, to restart it
}

func (b *bench) start(name, dir string, argv ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the server to stop (SIGTERM) and kills it after 15 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the server's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// memory returns VmRSS and VmHWM of the process in KiB.
func (p *proc) memory() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, nil
}

// written is the bytes the process caused to be written to storage so far
// (write_bytes of /proc/PID/io: page-cache pages it dirtied).
func (p *proc) written() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// cpuSeconds is the process's user+system CPU time so far.
func (p *proc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// authwatchConf is a daemon on loopback ports: SQLite with the default
// synchronous=FULL (every ack after an fsync'd commit), every 127.0.0.0/8
// source a NAS, no probes (the customers' IPs are not real), desk mode
// (no logins) on loopback.
const authwatchConf = `# generated by authwatch bench/run.sh
[http]
listen = "127.0.0.1:%d"
auth = false
[store]
path = %q
synchronous = "full"
checkpoint_interval = %q
[radius]
listen = "127.0.0.1:%d"
[probe]
enabled = false
[log]
level = "warn"
[[nas]]
name = "bench"
address = "127.0.0.0/8"
secret = %q
`

// startAuthwatch runs `authwatch serve` with a new database and waits until
// /healthz answers.
func (b *bench) startAuthwatch(name string) (*proc, error) {
	return b.startAuthwatchCheckpoints(name, 5*time.Minute)
}

// startAuthwatchCheckpoints is startAuthwatch with the state checkpoint
// saved every interval.
func (b *bench) startAuthwatchCheckpoints(name string, interval time.Duration) (*proc, error) {
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hp, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	rp, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "authwatch.toml")
	text := fmt.Sprintf(authwatchConf, hp, filepath.Join(dir, "authwatch.db"), interval.String(), rp, b.secret)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(b.bin, "check", "-config", conf).CombinedOutput(); err != nil {
		if !bytes.Contains(out, []byte("http.auth")) {
			return nil, fmt.Errorf("authwatch check: %v\n%s", err, out)
		}
		// A build from before web logins: the key is unknown, and the
		// page is open anyway.
		text = strings.Replace(text, "auth = false\n", "", 1)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	return b.runAuthwatch(name, dir, conf, hp, rp)
}

func (b *bench) runAuthwatch(name, dir, conf string, hp, rp int) (*proc, error) {
	p, err := b.start(name, dir, b.bin, "serve", "-config", conf)
	if err != nil {
		return nil, err
	}
	p.conf = conf
	p.radius, p.http = fmt.Sprintf("127.0.0.1:%d", rp), fmt.Sprintf("127.0.0.1:%d", hp)
	deadline := time.Now().Add(60 * time.Second) // a restart replays the store
	for {
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if p.exited() || time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("authwatch %s did not become healthy:\n%s", name, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart stops an authwatch and starts it again on the same database.
func (b *bench) restart(p *proc) (*proc, error) {
	p.stop()
	_, hp, _ := net.SplitHostPort(p.http)
	_, rp, _ := net.SplitHostPort(p.radius)
	h, _ := strconv.Atoi(hp)
	r, _ := strconv.Atoi(rp)
	return b.runAuthwatch(p.name, filepath.Dir(p.conf), p.conf, h, r)
}

// metric reads one unlabelled value from authwatch's /metrics.
func metric(p *proc, name string) (float64, error) {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// commonLoad is the load every accounting measurement uses: 4 NAS, 10,000
// customers, the default mix (1 Start : 8 Interim-Updates : 1 Stop), a NAS's
// retransmission schedule (1 s, 3 tries).
var commonLoad = []string{"-nas", "4", "-customers", "10000", "-mix", "start=1,interim=8,stop=1", "-retry", "1s", "-tries", "3"}

// runLoad runs `authwatch load` against p and returns its JSON report.
func (b *bench) runLoad(p *proc, args ...string) (*load.Report, error) {
	argv := append([]string{"load", "-server", p.radius, "-secret", b.secret, "-json"}, args...)
	b.cmds = append(b.cmds, "authwatch "+strings.Join(redact(argv, p), " "))
	cmd := exec.CommandContext(b.ctx, b.bin, argv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	var rep load.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		return nil, fmt.Errorf("authwatch load %v: %v\n%s", args, errors.Join(err, jerr), errOut.String())
	}
	return &rep, nil
}

// redact replaces the run's addresses and secret by placeholders, so that
// the commands recorded read like the ones to type.
func redact(argv []string, p *proc) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case a == p.radius:
			a = "127.0.0.1:PORT"
		case p.http != "" && strings.Contains(a, p.http):
			a = strings.ReplaceAll(a, p.http, "127.0.0.1:HTTPPORT")
		case i > 0 && argv[i-1] == "-secret":
			a = "SECRET"
		}
		out[i] = a
	}
	return out
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// writeBetweenMarkers replaces what lies between the bench markers in path
// with md, keeping the rest of the file (the hand-written sections).
func writeBetweenMarkers(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	block := beginMarker + "\n" + md + "\n" + endMarker
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(endMarker):]
	case s == "":
		s = "# Benchmarks\n\n" + block + "\n"
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

const (
	beginMarker = "<!-- BEGIN bench/run.sh: generated, do not edit by hand -->"
	endMarker   = "<!-- END bench/run.sh -->"
)
