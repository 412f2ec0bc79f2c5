package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"authwatch/internal/config"
	"authwatch/watcher/sqlstore"
	"authwatch/webui/auth"
)

// UserOptions are the arguments of `authwatch user`.
type UserOptions struct {
	Config string // configuration file, for the store
	Role   string // add, role: agent or admin
	Name   string // the account (every action but list)
}

// TokenOptions are the arguments of `authwatch token`.
type TokenOptions struct {
	Config string
	User   string // create: whose token; list: only theirs ("" for all)
	Name   string // create: what the token is for ("tail on my laptop")
	ID     string // revoke
}

// accounts opens the store named by the configuration at path, for the
// account commands. They work on the database while the daemon runs: it
// reads accounts, sessions and tokens from the store on every request.
func accounts(ctx context.Context, path string, stderr io.Writer) (*auth.Service, func(), error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{Driver: cfg.Store.Driver, Path: cfg.Store.Path, Synchronous: cfg.Store.Synchronous,
		DSN: cfg.Store.DSN.Reveal(), Logger: discardLogger()})
	if err != nil {
		return nil, nil, err
	}
	a, err := auth.New(auth.Options{Store: st, Logger: discardLogger()})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if !cfg.HTTP.Auth {
		fmt.Fprintln(stderr, "note: http.auth = false in", path, "(desk mode): accounts are not asked for until it is true")
	}
	return a, func() { st.Close() }, nil
}

// User runs `authwatch user add|passwd|role|disable|enable|list`. New
// passwords are asked twice on a terminal, or read from the first line of
// stdin otherwise (for scripts: `printf '%s\n' "$PW" | authwatch user add …`).
func User(ctx context.Context, action string, o UserOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	if action != "list" && o.Name == "" {
		return fmt.Errorf("user %s: which user? (authwatch user %s -config FILE NAME)", action, action)
	}
	switch action {
	case "add", "passwd", "role", "disable", "enable", "list":
	default:
		return fmt.Errorf("user: unknown action %q: want add, passwd, role, disable, enable or list", action)
	}
	a, closeStore, err := accounts(ctx, o.Config, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	switch action {
	case "add":
		role, err := auth.ParseRole(o.Role)
		if err != nil {
			return err
		}
		name, err := auth.NormalizeName(o.Name)
		if err != nil {
			return err
		}
		if _, err := a.User(ctx, name); err == nil {
			return fmt.Errorf("user %q already exists (authwatch user passwd changes the password)", name)
		}
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		u, err := a.AddUser(ctx, name, role, pw)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s added (%s)\n", u.Name, u.Role)
	case "passwd":
		if _, err := a.User(ctx, o.Name); err != nil {
			return err
		}
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if err := a.SetPassword(ctx, o.Name, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed; their web sessions were ended\n", o.Name)
	case "role":
		role, err := auth.ParseRole(o.Role)
		if err != nil {
			return err
		}
		if err := a.SetRole(ctx, o.Name, role); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is now %s\n", o.Name, role)
	case "disable", "enable":
		if err := a.SetDisabled(ctx, o.Name, action == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s %sd\n", o.Name, action)
	case "list":
		users, err := a.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tCREATED\tPASSWORD CHANGED")
		for _, u := range users {
			status := "enabled"
			if u.Disabled {
				status = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, status, day(u.Created), day(u.PasswordChanged))
		}
		return tw.Flush()
	}
	return nil
}

// Token runs `authwatch token create|list|revoke`. create prints the token
// alone on stdout, once: it is stored only hashed.
func Token(ctx context.Context, action string, o TokenOptions, stdout, stderr io.Writer) error {
	var id int64
	switch action {
	case "create":
		if o.User == "" {
			return errors.New("token create: whose token? (-user NAME)")
		}
	case "revoke":
		var err error
		if id, err = strconv.ParseInt(o.ID, 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("token revoke: want the token's ID (from authwatch token list), not %q", o.ID)
		}
	case "list":
	default:
		return fmt.Errorf("token: unknown action %q: want create, list or revoke", action)
	}
	a, closeStore, err := accounts(ctx, o.Config, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	switch action {
	case "create":
		secret, t, err := a.CreateToken(ctx, o.User, o.Name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "token %d for %s created; it is shown only now. Use it as: authwatch tail -token TOKEN LOGIN (or AUTHWATCH_TOKEN), or the header Authorization: Bearer TOKEN\n", t.ID, t.User)
		fmt.Fprintln(stdout, secret)
	case "revoke":
		if err := a.RevokeToken(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %d revoked\n", id)
	case "list":
		tokens, err := a.Tokens(ctx, o.User)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tNAME\tCREATED\tLAST USED\tREVOKED")
		for _, t := range tokens {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Name, day(t.Created), day(t.LastUsed), day(t.Revoked))
		}
		return tw.Flush()
	}
	return nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// readNewPassword asks for a password twice on a terminal (not echoed), or
// reads the first line of stdin when it is not one.
func readNewPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			return string(b), err
		}
		p1, err := ask(fmt.Sprintf("New password (%d to %d characters): ", auth.MinPasswordLen, auth.MaxPasswordLen))
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if err := auth.CheckPassword(p1); err != nil {
			return "", err
		}
		p2, err := ask("Again: ")
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if p1 != p2 {
			return "", errors.New("the two passwords differ; nothing changed")
		}
		return p1, nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin (give it on the first line, or run on a terminal to be asked)")
	}
	return pw, nil
}

// demoAdminName is the demo's account.
const demoAdminName = "admin"

// demoAdmin gives the demo's admin a new random password (creating the
// account the first time) and returns it, to be printed once.
func demoAdmin(ctx context.Context, d *Daemon) (string, error) {
	a := d.Auth()
	if a == nil {
		return "", errors.New("demo: accounts are off")
	}
	pw := auth.RandomPassword()
	_, err := a.AddUser(ctx, demoAdminName, auth.RoleAdmin, pw)
	if errors.Is(err, auth.ErrExists) {
		// A demo -dir run again: same account, new password.
		if err := a.SetDisabled(ctx, demoAdminName, false); err != nil {
			return "", err
		}
		err = a.SetPassword(ctx, demoAdminName, pw)
	}
	if err != nil {
		return "", fmt.Errorf("demo: admin account: %w", err)
	}
	return pw, nil
}

// demoToken makes an API token of the demo's admin, for `authwatch tail`.
func demoToken(ctx context.Context, d *Daemon) (string, error) {
	tok, _, err := d.Auth().CreateToken(ctx, demoAdminName, "demo: authwatch tail")
	if err != nil {
		return "", fmt.Errorf("demo: token: %w", err)
	}
	return tok, nil
}
