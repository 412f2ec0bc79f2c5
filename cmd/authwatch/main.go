// Command authwatch watches PPPoE customers re-authenticate, live: RADIUS
// accounting and other sources in, a per-customer live page out.
//
//	authwatch demo                 everything on loopback, with simulated NAS
//	authwatch serve -config FILE   the daemon
//	authwatch disconnect [-server URL] LOGIN   end a customer's stale session at the NAS
//	authwatch user add -config FILE [-role agent|admin] NAME   accounts (also passwd, role, disable, enable, list)
//	authwatch token create -config FILE -user NAME             API tokens (also list, revoke ID)
//	authwatch version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"authwatch/internal/app"
	"authwatch/internal/load"
)

const usage = `usage: authwatch <command> [flags]

commands:
  demo        run everything on loopback with a simulated NAS, print the URL
  serve       run the daemon: authwatch serve -config /etc/authwatch/authwatch.toml
  check       validate a configuration; -connect also tries the store, routers and upstreams
  tail        follow a customer in the terminal: authwatch tail [-server URL] LOGIN
  disconnect  end a customer's stale session at the NAS: authwatch disconnect [-server URL] [-token T] LOGIN
  user        accounts: authwatch user add|passwd|role|disable|enable|list -config FILE [-role agent|admin] NAME
  token       API tokens: authwatch token create -config FILE -user NAME [-name WHAT] | list [-user NAME] | revoke ID
  load        RADIUS accounting load generator: authwatch load -server HOST:PORT -secret S [-rate R | -concurrency C]
  version     print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errNoCommand) {
			os.Exit(2)
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h on a command: its flags were printed as asked
		}
		fmt.Fprintln(os.Stderr, "authwatch:", err)
		os.Exit(2)
	}
}

// errNoCommand: the usage was printed, no command given.
var errNoCommand = errors.New("no command")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errNoCommand
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("authwatch "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "serve":
		configPath := fs.String("config", "/etc/authwatch/authwatch.toml", "configuration file")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return app.Serve(ctx, *configPath, stderr)
	case "demo":
		var o app.DemoOptions
		fs.StringVar(&o.HTTP, "http", "127.0.0.1:8080", "address of the page (falls back to a free port when taken)")
		fs.IntVar(&o.Customers, "customers", 40, "simulated customers")
		fs.StringVar(&o.Dir, "dir", "", "directory for the SQLite file (default: a new temporary directory, removed at exit)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return app.Demo(ctx, o, stdout, stderr)
	case "tail":
		var o app.TailOptions
		fs.StringVar(&o.Server, "server", "http://127.0.0.1:8080", "authwatch's address")
		fs.StringVar(&o.Token, "token", os.Getenv("AUTHWATCH_TOKEN"), "API token (default: $AUTHWATCH_TOKEN)")
		fs.Int64Var(&o.Since, "since", 0, "print the events after this seq (default: the recent ones)")
		fs.BoolVar(&o.JSON, "json", false, "one JSON object per line, for scripts")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: authwatch tail [-server URL] [-since SEQ] [-json] LOGIN   ('*' for every login)")
		}
		o.Login = fs.Arg(0)
		o.Color = !o.JSON && isTerminal(stdout)
		return app.Tail(ctx, o, stdout)
	case "disconnect":
		var o app.DisconnectOptions
		fs.StringVar(&o.Server, "server", "http://127.0.0.1:8080", "authwatch's address")
		fs.StringVar(&o.Token, "token", os.Getenv("AUTHWATCH_TOKEN"), "API token (default: $AUTHWATCH_TOKEN)")
		fs.StringVar(&o.SessionID, "session", "", "end only this session id (default: every open session of LOGIN)")
		fs.BoolVar(&o.JSON, "json", false, "print the API's JSON answer")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: authwatch disconnect [-server URL] [-token T] [-session ID] [-json] LOGIN")
		}
		o.Login = fs.Arg(0)
		return app.Disconnect(ctx, o, stdout)
	case "user":
		var o app.UserOptions
		fs.StringVar(&o.Config, "config", "/etc/authwatch/authwatch.toml", "configuration file (for the store)")
		fs.StringVar(&o.Role, "role", "agent", "agent (read, watch) or admin (also router health, accounts, audit log); for add and role")
		action, names, err := parseAction(fs, args)
		if err != nil {
			return err
		}
		if len(names) > 1 {
			return fmt.Errorf("user %s: one user at a time, got %q", action, names)
		}
		if len(names) == 1 {
			o.Name = names[0]
		}
		return app.User(ctx, action, o, os.Stdin, stdout, stderr)
	case "token":
		var o app.TokenOptions
		fs.StringVar(&o.Config, "config", "/etc/authwatch/authwatch.toml", "configuration file (for the store)")
		fs.StringVar(&o.User, "user", "", "whose token (create; list filters by it)")
		fs.StringVar(&o.Name, "name", "", "what the token is for, shown by list (create)")
		action, ids, err := parseAction(fs, args)
		if err != nil {
			return err
		}
		if len(ids) > 1 {
			return fmt.Errorf("token %s: one token at a time, got %q", action, ids)
		}
		if len(ids) == 1 {
			o.ID = ids[0]
		}
		return app.Token(ctx, action, o, stdout, stderr)
	case "check":
		configPath := fs.String("config", "/etc/authwatch/authwatch.toml", "configuration file")
		connect := fs.Bool("connect", false, "also try the store and each RouterOS router")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return app.Check(ctx, *configPath, *connect, stdout)
	case "load":
		f := load.BindFlags(fs)
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := f.Config()
		if err != nil {
			return err
		}
		return load.Main(ctx, cfg, f.JSON, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "authwatch", app.Version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// parseAction reads "ACTION [flags] [ARG…]", flags also allowed after the
// arguments (authwatch user add maria -role admin).
func parseAction(fs *flag.FlagSet, args []string) (action string, rest []string, err error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Parse(args) // -h prints the flags
		return "", nil, fmt.Errorf("%s: which action? (see authwatch help)", strings.TrimPrefix(fs.Name(), "authwatch "))
	}
	action, args = args[0], args[1:]
	for {
		if err := fs.Parse(args); err != nil {
			return "", nil, err
		}
		if fs.NArg() == 0 {
			return action, rest, nil
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
}

// isTerminal reports whether w is a character device (a terminal), to
// colour output only for people.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
