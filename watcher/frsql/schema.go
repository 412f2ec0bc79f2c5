package frsql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// kind is what Go value a logical column is read into.
type kind int

const (
	kindString kind = iota
	kindInt
	kindTime
)

// logical is a column the source knows how to use, by meaning: the names it
// has in FreeRADIUS's schema and in the usual additions, and where in a row
// it goes.
type logical struct {
	name       string
	candidates []string // actual names tried in order, when not mapped
	kind       kind
	required   bool
	dest       func(*row) any
}

// table is one followed table's logical columns.
type table struct {
	key     string // "postauth" or "acct": the Columns prefix and status name
	columns []logical
}

func (t table) logical(name string) *logical {
	for i := range t.columns {
		if t.columns[i].name == name {
			return &t.columns[i]
		}
	}
	return nil
}

// The logical columns of each table. The password column is not among them:
// it is never selected (a mapping to it is refused by Validate).
var (
	postAuthTable = table{key: "postauth", columns: []logical{
		{name: "id", candidates: []string{"id"}, kind: kindInt, required: true, dest: func(r *row) any { return &r.ID }},
		{name: "login", candidates: []string{"username"}, required: true, dest: func(r *row) any { return &r.Login }},
		{name: "reply", candidates: []string{"reply"}, required: true, dest: func(r *row) any { return &r.Reply }},
		{name: "time", candidates: []string{"authdate"}, kind: kindTime, required: true, dest: func(r *row) any { return &r.Time }},
		{name: "nas", candidates: []string{"nasipaddress"}, dest: func(r *row) any { return &r.NAS }},
		{name: "mac", candidates: []string{"callingstationid"}, dest: func(r *row) any { return &r.MAC }},
		{name: "called", candidates: []string{"calledstationid"}, dest: func(r *row) any { return &r.Called }},
		{name: "reply_message", candidates: []string{"reply_message", "replymessage"}, dest: func(r *row) any { return &r.ReplyMessage }},
		{name: "class", candidates: []string{"class"}, dest: func(r *row) any { return &r.Class }},
	}}
	acctTable = table{key: "acct", columns: []logical{
		{name: "id", candidates: []string{"radacctid"}, kind: kindInt, required: true, dest: func(r *row) any { return &r.ID }},
		{name: "session_id", candidates: []string{"acctsessionid"}, required: true, dest: func(r *row) any { return &r.SessionID }},
		{name: "login", candidates: []string{"username"}, required: true, dest: func(r *row) any { return &r.Login }},
		{name: "nas", candidates: []string{"nasipaddress"}, required: true, dest: func(r *row) any { return &r.NAS }},
		{name: "start_time", candidates: []string{"acctstarttime"}, kind: kindTime, required: true, dest: func(r *row) any { return &r.Start }},
		{name: "update_time", candidates: []string{"acctupdatetime"}, kind: kindTime, dest: func(r *row) any { return &r.Update }},
		{name: "stop_time", candidates: []string{"acctstoptime"}, kind: kindTime, required: true, dest: func(r *row) any { return &r.Stop }},
		{name: "session_time", candidates: []string{"acctsessiontime"}, kind: kindInt, dest: func(r *row) any { return &r.SessionTime }},
		{name: "input_octets", candidates: []string{"acctinputoctets"}, kind: kindInt, dest: func(r *row) any { return &r.InputOctets }},
		{name: "output_octets", candidates: []string{"acctoutputoctets"}, kind: kindInt, dest: func(r *row) any { return &r.OutputOctets }},
		{name: "mac", candidates: []string{"callingstationid"}, dest: func(r *row) any { return &r.MAC }},
		{name: "called", candidates: []string{"calledstationid"}, dest: func(r *row) any { return &r.Called }},
		{name: "nas_port_id", candidates: []string{"nasportid"}, dest: func(r *row) any { return &r.NASPortID }},
		{name: "terminate_cause", candidates: []string{"acctterminatecause"}, dest: func(r *row) any { return &r.TerminateCause }},
		{name: "ip", candidates: []string{"framedipaddress"}, dest: func(r *row) any { return &r.IP }},
		{name: "ipv6_address", candidates: []string{"framedipv6address"}, dest: func(r *row) any { return &r.IPv6Address }},
		{name: "ipv6_prefix", candidates: []string{"framedipv6prefix"}, dest: func(r *row) any { return &r.IPv6Prefix }},
		{name: "delegated_prefix", candidates: []string{"delegatedipv6prefix"}, dest: func(r *row) any { return &r.DelegatedPrefix }},
		{name: "class", candidates: []string{"class"}, dest: func(r *row) any { return &r.Class }},
	}}
	tables = []table{postAuthTable, acctTable}
)

// dialect is what differs between the two databases.
type dialect struct {
	driver string // Config.Driver
}

// quote quotes a plain identifier (checked by identRE), and each part of a
// qualified table name.
func (d dialect) quote(name string) string {
	q := `"`
	if d.driver == MySQL {
		q = "`"
	}
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = q + p + q
	}
	return strings.Join(parts, ".")
}

// columnsQuery lists a table's columns and their types. information_schema
// shows only the columns the user may read: a table without SELECT looks
// like a missing one.
func (d dialect) columnsQuery() string {
	if d.driver == MySQL {
		return `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`
	}
	return `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = COALESCE(CAST(? AS text), current_schema()) AND table_name = ? ORDER BY ordinal_position`
}

// nowQuery returns the database's clock: as a time with zone, and as the
// wall clock of the session's zone (what DATETIME and PostgreSQL's
// timestamp without time zone hold).
func (d dialect) nowQuery() string {
	if d.driver == MySQL {
		return "SELECT NOW(6), NOW(6)"
	}
	return "SELECT CURRENT_TIMESTAMP, LOCALTIMESTAMP"
}

// column is a logical column as found in the table.
type column struct {
	*logical
	actual   string // as the database spells it
	dataType string // information_schema's data_type, lower case
	// naive says the database keeps no zone with the value: its wall
	// clock is read in Config.TimeZone.
	naive bool
}

// schema is a table's columns as detected, and the queries built from them.
type schema struct {
	table   table
	name    string // the table, as configured
	cols    []column
	byName  map[string]*column
	selects string // the select list, in cols order
}

func (s *schema) has(logical string) bool { return s.byName[logical] != nil }

// detect reads the table's columns from information_schema and matches them
// to the logical columns: a mapped one must exist; a required one must be
// found under one of its usual names.
func detect(ctx context.Context, db *sqlx.DB, d dialect, cfg Config, t table, name string) (*schema, error) {
	var schemaName sql.NullString
	tableName := name
	if s, tn, ok := strings.Cut(name, "."); ok {
		schemaName, tableName = sql.NullString{String: s, Valid: true}, tn
	}
	rows, err := db.QueryContext(ctx, db.Rebind(d.columnsQuery()), schemaName, tableName)
	if err != nil {
		return nil, fmt.Errorf("table %s: list its columns: %w", name, err)
	}
	defer rows.Close()
	found := map[string]column{} // by lower-case name
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.actual, &c.dataType); err != nil {
			return nil, fmt.Errorf("table %s: list its columns: %w", name, err)
		}
		c.dataType = strings.ToLower(c.dataType)
		found[strings.ToLower(c.actual)] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s: list its columns: %w", name, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("table %s: not found, or this user may not read it (GRANT SELECT ON %s; see the README)", name, name)
	}
	s := &schema{table: t, name: name, byName: map[string]*column{}}
	for i := range t.columns {
		l := &t.columns[i]
		mapped, key := cfg.column(t.key, l.name)
		var c column
		var ok bool
		if mapped != "" {
			if c, ok = found[strings.ToLower(mapped)]; !ok {
				return nil, fmt.Errorf("table %s: column %s (columns.%s) not found, or this user may not read it", name, mapped, key)
			}
		} else {
			for _, cand := range l.candidates {
				if c, ok = found[cand]; ok {
					break
				}
			}
			if !ok {
				if l.required {
					return nil, fmt.Errorf("table %s: column %s missing (or not readable by this user); map the column that holds it with columns.%s.%s", name, l.candidates[0], t.key, l.name)
				}
				continue
			}
		}
		c.logical = l
		if l.kind == kindTime {
			if !isTimeType(c.dataType) && l.name != "time" {
				// The change cursors compare these columns in SQL;
				// only a real time type orders correctly.
				return nil, fmt.Errorf("table %s: column %s is of type %s; a date/time type is needed", name, c.actual, c.dataType)
			}
			c.naive = d.driver == Postgres && c.dataType != "timestamp with time zone"
		}
		s.cols = append(s.cols, c)
	}
	var list []string
	for i := range s.cols {
		c := &s.cols[i]
		s.byName[c.name] = c
		list = append(list, d.selectExpr(*c))
	}
	s.selects = strings.Join(list, ", ")
	return s, nil
}

func isTimeType(t string) bool {
	return strings.HasPrefix(t, "timestamp") || strings.HasPrefix(t, "datetime") || t == "date"
}

// selectExpr is how a column is selected: text-like values cast to text on
// PostgreSQL (inet, macaddr… have no plain string form in the driver).
func (d dialect) selectExpr(c column) string {
	q := d.quote(c.actual)
	if d.driver == Postgres && c.kind == kindString && c.dataType != "text" && c.dataType != "character varying" {
		return "CAST(" + q + " AS text)"
	}
	if d.driver == Postgres && c.kind == kindInt && !strings.Contains(c.dataType, "int") {
		return "CAST(" + q + " AS bigint)"
	}
	return q
}

// The queries. Every one names its columns: the password is never read.

// newRows selects rows after an id, in id order.
func (s *schema) newRows(d dialect, limit int) string {
	id := d.quote(s.byName["id"].actual)
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s > ? ORDER BY %s LIMIT %d", s.selects, d.quote(s.name), id, id, limit)
}

// rowsByID selects the rows with n given ids (holes being re-read).
func (s *schema) rowsByID(d dialect, n int) string {
	marks := strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s IN (%s)", s.selects, d.quote(s.name), d.quote(s.byName["id"].actual), marks)
}

// changedRows selects rows with id <= a bound whose time column (update_time
// or stop_time) is at or after a key (time, id), in (time, id) order: the
// keyset's "(t, id) > (T, ID)" written so that an index on t serves it.
// Updates are looked for in open rows only; a stopped row is a stop.
func (s *schema) changedRows(d dialect, timeCol string, limit int) string {
	id := d.quote(s.byName["id"].actual)
	t := d.quote(s.byName[timeCol].actual)
	open := ""
	if timeCol == "update_time" {
		open = d.quote(s.byName["stop_time"].actual) + " IS NULL AND "
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s%s <= ? AND %s >= ? AND (%s > ? OR %s > ?) ORDER BY %s, %s LIMIT %d",
		s.selects, d.quote(s.name), open, id, t, t, id, t, id, limit)
}

// maxID is the highest id in the table (0 when empty).
func (s *schema) maxID(d dialect) string {
	return fmt.Sprintf("SELECT COALESCE(MAX(%s), 0) FROM %s", d.quote(s.byName["id"].actual), d.quote(s.name))
}

// firstIDSince is the lowest id whose time column is at or after a time
// (NULL when none): where a backfill starts.
func (s *schema) firstIDSince(d dialect, timeCol string) string {
	return fmt.Sprintf("SELECT MIN(%s) FROM %s WHERE %s >= ?", d.quote(s.byName["id"].actual), d.quote(s.name), d.quote(s.byName[timeCol].actual))
}

// actualColumns lists the columns read, for the status.
func (s *schema) actualColumns() []string {
	out := make([]string, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.actual
	}
	return out
}

// scanDest returns the scan destinations of a row in the select order.
func (s *schema) scanDest(r *row) []any {
	out := make([]any, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.dest(r)
	}
	return out
}
