package frsql

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults and bounds of the Config fields.
const (
	DefaultPostAuthTable = "radpostauth"
	DefaultAcctTable     = "radacct"
	DefaultPollInterval  = time.Second

	minPoll     = 100 * time.Millisecond
	maxPoll     = 10 * time.Minute
	MaxBackfill = 31 * 24 * time.Hour
	maxName     = 64
)

// The drivers.
const (
	MySQL    = "mysql"    // MySQL and MariaDB, through github.com/go-sql-driver/mysql
	Postgres = "postgres" // PostgreSQL, through pgx
)

// Config is one FreeRADIUS SQL database to follow. It is decoded straight
// from a [[sql_source]] table of the configuration file; Validate reports
// what is wrong, naming the key.
type Config struct {
	// Name identifies the source: events carry Source "frsql:" + Name, and
	// the saved position is kept under that name.
	Name string `toml:"name"`
	// Driver is "mysql" (MySQL, MariaDB) or "postgres".
	Driver string `toml:"driver"`
	// DSN is the connection string, with its password: for mysql
	// go-sql-driver's form, user:password@tcp(host:3306)/radius; for
	// postgres a URL or key=value pairs, as libpq reads them. A user with
	// SELECT on the two tables is enough (see README.md). It is never
	// logged. DSNFile, when set instead, is read at every connect (trailing
	// white space removed), so a rotated password needs no restart.
	DSN     string `toml:"dsn" json:"-"`
	DSNFile string `toml:"dsn_file"`
	// PostAuthTable and AcctTable name the tables (defaults radpostauth and
	// radacct), optionally qualified by their schema or database
	// ("radius.radacct").
	PostAuthTable string `toml:"postauth_table"`
	AcctTable     string `toml:"acct_table"`
	// PostAuth and Acct turn following each table off (nil means on): a
	// site whose NAS already sends accounting to authwatch may follow
	// radpostauth only.
	PostAuth *bool `toml:"postauth"`
	Acct     *bool `toml:"acct"`
	// PollInterval is how often the tables are read; default 1s.
	PollInterval time.Duration `toml:"poll_interval"`
	// TimeZone is the IANA name of the zone of times stored without one
	// (MySQL DATETIME and TIMESTAMP as read back, PostgreSQL timestamp
	// without time zone): the zone FreeRADIUS and the database run in.
	// "" means the local zone of authwatch's host.
	TimeZone string `toml:"timezone"`
	// Backfill is how far back the very first run reads (default 0: from
	// now on). Later runs resume from the saved position instead.
	Backfill time.Duration `toml:"backfill"`
	// Columns maps a logical column (see Columns in the README: login,
	// nas, mac, reply_message, session_id…) to the table's actual column,
	// for schemas that renamed or added columns. A key applies to every
	// table that has the logical column; prefix it with "postauth." or
	// "acct." for one table only.
	Columns map[string]string `toml:"columns"`
	// NAS maps the NAS addresses stored in nasipaddress to the NAS names
	// authwatch uses (the [[nas]] and [[routeros]] names), so that events
	// from every source about one session meet. An address not listed
	// stays the NAS name.
	NAS map[string]string `toml:"nas"`
}

// FollowPostAuth reports whether radpostauth is followed.
func (c Config) FollowPostAuth() bool { return c.PostAuth == nil || *c.PostAuth }

// FollowAcct reports whether radacct is followed.
func (c Config) FollowAcct() bool { return c.Acct == nil || *c.Acct }

// String describes the source without its DSN.
func (c Config) String() string {
	return fmt.Sprintf("sql_source %q (%s)", c.Name, c.Driver)
}

// GoString keeps the DSN out of %#v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the DSN out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("driver", c.Driver))
}

// withDefaults fills the optional fields.
func (c Config) withDefaults() Config {
	if c.PostAuthTable == "" {
		c.PostAuthTable = DefaultPostAuthTable
	}
	if c.AcctTable == "" {
		c.AcctTable = DefaultAcctTable
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	return c
}

// identRE is what a table or column name may be: a plain SQL identifier,
// so that it can be quoted into a query without escaping anything.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`)

// passwordColumns are never read, whatever the mapping says.
var passwordColumns = []string{"pass", "password", "passwd", "user_password"}

// Validate reports the first problem in c, naming its configuration key
// ("driver: must be …"); the caller adds which [[sql_source]] it is.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		return errors.New("name: missing")
	}
	if strings.ContainsAny(c.Name, " \t\r\n") {
		return bad("name", "must not contain white space")
	}
	if len(c.Name) > maxName {
		return bad("name", "longer than %d bytes", maxName)
	}
	switch c.Driver {
	case MySQL, Postgres:
	case "":
		return bad("driver", `missing (must be "mysql" or "postgres")`)
	default:
		return bad("driver", `must be "mysql" or "postgres", not %q`, c.Driver)
	}
	switch {
	case c.DSN != "" && c.DSNFile != "":
		return bad("dsn_file", "set either dsn or dsn_file, not both")
	case c.DSN == "" && c.DSNFile == "":
		return bad("dsn", "missing (or dsn_file)")
	case c.DSN != "":
		if err := checkDSN(c.Driver, c.DSN); err != nil {
			return bad("dsn", "%v", err)
		}
	case !strings.HasPrefix(c.DSNFile, "/"):
		return bad("dsn_file", "%q is not absolute", c.DSNFile)
	}
	c = c.withDefaults()
	for key, t := range map[string]string{"postauth_table": c.PostAuthTable, "acct_table": c.AcctTable} {
		if err := checkTable(t); err != nil {
			return bad(key, "%v", err)
		}
	}
	if !c.FollowPostAuth() && !c.FollowAcct() {
		return bad("acct", "postauth and acct are both off: nothing to follow")
	}
	if c.PollInterval < minPoll || c.PollInterval > maxPoll {
		return bad("poll_interval", "%v is out of range (%v to %v)", c.PollInterval, minPoll, maxPoll)
	}
	if _, err := c.location(); err != nil {
		return bad("timezone", "%v", err)
	}
	if c.Backfill < 0 || c.Backfill > MaxBackfill {
		return bad("backfill", "%v is out of range (0 to %v)", c.Backfill, MaxBackfill)
	}
	keys := make([]string, 0, len(c.Columns))
	for k := range c.Columns {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := checkColumn(k, c.Columns[k]); err != nil {
			return bad("columns."+k, "%v", err)
		}
	}
	addrs := make([]string, 0, len(c.NAS))
	for addr := range c.NAS {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	for _, addr := range addrs {
		if strings.TrimSpace(addr) == "" {
			return bad("nas", "empty NAS address")
		}
		if strings.TrimSpace(c.NAS[addr]) == "" {
			return bad("nas."+addr, "empty NAS name")
		}
	}
	return nil
}

// checkDSN parses a DSN as its driver will. The drivers' messages do not
// repeat the password.
func checkDSN(driver, dsn string) error {
	if driver == MySQL {
		if strings.Contains(dsn, "://") {
			return errors.New("not in go-sql-driver's form (user:password@tcp(host:3306)/radius; a URL is not accepted)")
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return err
		}
		if cfg.DBName == "" {
			return errors.New("no database name (user:password@tcp(host:3306)/radius)")
		}
		return nil
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return errors.New(scrub(err.Error(), dsn))
	}
	return nil
}

// checkTable accepts a table name, optionally qualified by one schema.
func checkTable(t string) error {
	parts := strings.Split(t, ".")
	if len(parts) > 2 {
		return fmt.Errorf("%q: at most one schema qualifier (schema.table)", t)
	}
	for _, p := range parts {
		if !identRE.MatchString(p) {
			return fmt.Errorf("%q is not a plain SQL name (letters, digits, _ and $)", t)
		}
	}
	return nil
}

// checkColumn accepts a mapping from a logical column to an actual one.
func checkColumn(key, col string) error {
	table, logical, ok := strings.Cut(key, ".")
	if !ok {
		table, logical = "", key
	}
	var found bool
	for _, t := range tables {
		if table != "" && table != t.key {
			continue
		}
		if t.logical(logical) != nil {
			found = true
		}
	}
	switch {
	case table != "" && table != "postauth" && table != "acct":
		return fmt.Errorf(`unknown table %q (use "postauth." or "acct.")`, table)
	case !found:
		return fmt.Errorf("unknown logical column %q (known: %s)", key, knownColumns())
	case !identRE.MatchString(col):
		return fmt.Errorf("%q is not a plain SQL column name (letters, digits, _ and $)", col)
	case slices.Contains(passwordColumns, strings.ToLower(col)):
		return fmt.Errorf("%q holds passwords; authwatch never reads it", col)
	}
	return nil
}

func knownColumns() string {
	var names []string
	for _, t := range tables {
		for _, l := range t.columns {
			if !slices.Contains(names, l.name) {
				names = append(names, l.name)
			}
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// location returns the zone of times stored without one.
func (c Config) location() (*time.Location, error) {
	if c.TimeZone == "" || c.TimeZone == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (an IANA name such as America/Sao_Paulo, or UTC)", c.TimeZone)
	}
	return loc, nil
}

// column returns the actual column configured for a logical one of table
// ("" when none is): "postauth.mac" before "mac".
func (c Config) column(table, logical string) (col, key string) {
	if v, ok := c.Columns[table+"."+logical]; ok {
		return v, table + "." + logical
	}
	if v, ok := c.Columns[logical]; ok {
		return v, logical
	}
	return "", ""
}

// nasName returns the authwatch NAS name for a stored NAS address, and the
// address in canonical form when it is one.
func (c Config) nasName(stored string) (name, ip string) {
	stored = strings.TrimSpace(stored)
	if stored == "" {
		return "", ""
	}
	if n, ok := c.NAS[stored]; ok {
		name = n
	}
	if a, err := parseAddr(stored); err == nil {
		ip = a.String()
		if name == "" {
			if n, ok := c.NAS[ip]; ok {
				name = n
			}
		}
	}
	switch {
	case name != "":
		return name, ip
	case ip != "":
		return ip, ip
	}
	return stored, ""
}

// parseAddr reads an address as stored: bare, or as PostgreSQL's inet
// prints a host address (10.0.0.1/32).
func parseAddr(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil && p.IsSingleIP() {
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}
