package load

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Flags are the command line of `authwatch load`, bound to a FlagSet by
// BindFlags; Config turns them into a Config once the set is parsed.
type Flags struct {
	fs         *flag.FlagSet
	cfg        Config
	secret     string
	secretFile string
	mix        string
	sources    string
	JSON       bool
}

// BindFlags defines the load tool's flags on fs.
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	c := &f.cfg
	fs.StringVar(&c.Server, "server", "127.0.0.1:1813", "accounting server, host:port")
	// Secrets from the environment are read after parsing, so that -h
	// never prints them as a default.
	fs.StringVar(&f.secret, "secret", "", "shared secret (default: $AUTHWATCH_LOAD_SECRET)")
	fs.StringVar(&f.secretFile, "secret-file", "", "read the shared secret from this file instead")
	fs.IntVar(&c.NAS, "nas", DefaultNAS, "simulated NAS, each a UDP socket with 256 Identifiers")
	fs.StringVar(&f.sources, "bind", "", "source addresses for the NAS, e.g. 127.0.0.2,127.0.0.3 or 127.0.1.0/28 (NAS i binds address i mod count)")
	fs.IntVar(&c.Customers, "customers", DefaultCustomers, "distinct logins (PREFIX000001…)")
	fs.StringVar(&c.LoginPrefix, "login-prefix", DefaultLoginPrefix, "prefix of the generated logins")
	fs.StringVar(&f.mix, "mix", DefaultMix.String(), "weights of Start, Interim-Update and Stop")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second (0: closed loop with -concurrency)")
	fs.IntVar(&c.Concurrency, "concurrency", DefaultConcurrency, "closed loop: requests in flight")
	fs.IntVar(&c.MaxInFlight, "max-inflight", 0, "open loop: cap on requests in flight (default 256 per NAS)")
	fs.DurationVar(&c.Duration, "duration", DefaultDuration, "how long to issue requests (with -requests and no -duration: no time limit)")
	fs.Int64Var(&c.Requests, "requests", 0, "stop after this many requests (0: by -duration)")
	fs.DurationVar(&c.Retry, "retry", DefaultRetry, "wait for an answer this long before retransmitting")
	fs.IntVar(&c.Tries, "tries", DefaultTries, "datagrams per request before it counts as lost")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.StringVar(&c.WS.URL, "ws", "", "authwatch's HTTP URL (http://127.0.0.1:8080) to open websocket subscribers on")
	fs.IntVar(&c.WS.Logins, "ws-logins", 0, "websocket subscribers following one customer each (the first N customers)")
	fs.IntVar(&c.WS.Firehose, "ws-firehose", 0, "websocket subscribers following every login (login=*)")
	fs.StringVar(&c.WS.Token, "ws-token", "", "API token for the websocket, when authwatch requires one (default: $AUTHWATCH_TOKEN)")
	fs.DurationVar(&c.WS.Grace, "ws-grace", DefaultWSGrace, "wait this long after the load for events still on their way")
	fs.DurationVar(&c.Progress, "progress", 0, "print progress to stderr at this interval (0: off)")
	fs.BoolVar(&f.JSON, "json", false, "print the report as JSON")
	return f
}

// Config returns the configuration the parsed flags describe.
func (f *Flags) Config() (Config, error) {
	c := f.cfg
	secret := f.secret
	if secret == "" {
		secret = os.Getenv("AUTHWATCH_LOAD_SECRET")
	}
	if c.WS.Token == "" {
		c.WS.Token = os.Getenv("AUTHWATCH_TOKEN")
	}
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return c, fmt.Errorf("-secret-file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	if secret == "" {
		return c, fmt.Errorf("no secret: give -secret, -secret-file or $AUTHWATCH_LOAD_SECRET")
	}
	c.Secret = []byte(secret)
	m, err := ParseMix(f.mix)
	if err != nil {
		return c, fmt.Errorf("-mix: %w", err)
	}
	c.Mix = m
	if c.Sources, err = ParseSources(f.sources); err != nil {
		return c, fmt.Errorf("-bind: %w", err)
	}
	durationSet := false
	f.fs.Visit(func(fl *flag.Flag) { durationSet = durationSet || fl.Name == "duration" })
	if c.Requests > 0 && !durationSet {
		c.Duration = 0 // -requests alone: as many as asked, however long it takes
	}
	if c.Duration == 0 && c.Requests == 0 {
		return c, fmt.Errorf("give -duration or -requests")
	}
	if c.Progress > 0 && c.Progress < 100*time.Millisecond {
		c.Progress = 100 * time.Millisecond
	}
	return c, nil
}
