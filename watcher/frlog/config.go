package frlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// maxName bounds Config.Name, which every event carries in its Source.
const maxName = 64

// MaxBackfill bounds Config.Backfill: a first run reads at most this many
// old lines.
const MaxBackfill = 100000

// Config is one FreeRADIUS log file to follow. It is decoded straight from a
// [[freeradius_log]] table of the configuration file; Validate reports what
// is wrong, naming the key.
type Config struct {
	// Name identifies the file: events carry Source "freeradius:" + Name,
	// and the saved position is kept under that name.
	Name string `toml:"name"`
	// Path is the log file, e.g. /var/log/freeradius/radius.log. It may be
	// absent for a while (it is waited for), but it must be absolute.
	Path string `toml:"path"`
	// TimeZone is the IANA name of the zone FreeRADIUS writes its
	// timestamps in ("" means the local zone of authwatch's host). Lines
	// from syslog with an RFC 3339 timestamp carry their own offset.
	TimeZone string `toml:"timezone"`
	// Clients maps FreeRADIUS client short names (clients.conf) to the NAS
	// names authwatch uses (the [[nas]] and [[routeros]] names), so that
	// events from every source about one concentrator meet. A client not
	// listed keeps its short name.
	Clients map[string]string `toml:"clients"`
	// Backfill is how many of the lines already in the file are read on
	// the very first run (default 0: start at the end). Later runs resume
	// from the saved position instead.
	Backfill int `toml:"backfill"`
}

// String describes the source.
func (c Config) String() string { return fmt.Sprintf("freeradius_log %q (%s)", c.Name, c.Path) }

// Validate reports the first problem in c, naming its configuration key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("freeradius_log %q: %s: %s", c.Name, key, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		return errors.New("freeradius_log: name: missing")
	}
	if strings.ContainsAny(c.Name, " \t\r\n") {
		return bad("name", "must not contain white space")
	}
	if len(c.Name) > maxName {
		return bad("name", "longer than %d bytes", maxName)
	}
	if c.Path == "" {
		return bad("path", "missing (the radius.log file, e.g. /var/log/freeradius/radius.log)")
	}
	if !filepath.IsAbs(c.Path) {
		return bad("path", "%q is not absolute", c.Path)
	}
	if strings.HasSuffix(c.Path, "/") {
		return bad("path", "%q names a directory, not the log file", c.Path)
	}
	if _, err := c.location(); err != nil {
		return bad("timezone", "%v", err)
	}
	for short, nas := range c.Clients {
		if short == "" {
			return bad("clients", "empty client short name")
		}
		if strings.TrimSpace(nas) == "" {
			return bad("clients."+short, "empty NAS name")
		}
	}
	if c.Backfill < 0 || c.Backfill > MaxBackfill {
		return bad("backfill", "%d is out of range (0 to %d lines)", c.Backfill, MaxBackfill)
	}
	return nil
}

// location returns the time zone of the timestamps.
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

// nas returns the authwatch NAS name of a FreeRADIUS client.
func (c Config) nas(client string) string {
	if n, ok := c.Clients[client]; ok {
		return n
	}
	return client
}
