package sqlstore

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

//go:embed migrations
var migrations embed.FS

// dialect is everything that differs between the SQL databases we support.
type dialect struct {
	name        string // Options.Driver
	driver      string // database/sql driver name
	goose       goose.Dialect
	bind        int  // sqlx bind type
	seqInWriter bool // the single writer assigns seq (SQLite) instead of the database
	maxParams   int  // bind parameters per statement
	// loginBelow returns the smallest string greater than every login
	// starting with prefix, for the index range of a prefix search; ok is
	// false when there is none (search with login >= prefix alone).
	loginBelow func(prefix string) (bound string, ok bool)
	// keepNewestCheckpoint makes SaveCheckpoint ignore a checkpoint older
	// than the one stored: several instances save theirs into one row.
	keepNewestCheckpoint bool
}

var sqliteDialect = dialect{
	name:        "sqlite",
	driver:      "sqlite",
	goose:       goose.DialectSQLite3,
	bind:        sqlx.QUESTION,
	seqInWriter: true,
	maxParams:   32766,
	// SQLite compares TEXT bytewise (BINARY), and no UTF-8 byte is 0xff.
	loginBelow: func(prefix string) (string, bool) { return prefix + "\xff", true },
}

// postgresDialect: the database assigns seq (a sequence, under an advisory
// lock: see appendPostgres), text columns that are searched by prefix use
// COLLATE "C" so that byte order is index order, and the parameters are $n.
var postgresDialect = dialect{
	name:                 "postgres",
	driver:               "pgx",
	goose:                goose.DialectPostgres,
	bind:                 sqlx.DOLLAR,
	maxParams:            65535,
	loginBelow:           utf8Successor,
	keepNewestCheckpoint: true,
}

func init() {
	// modernc.org/sqlite registers as "sqlite", a name sqlx does not know.
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

func dialectFor(name string) (dialect, error) {
	switch name {
	case "", "sqlite":
		return sqliteDialect, nil
	case "postgres":
		return postgresDialect, nil
	}
	return dialect{}, fmt.Errorf("sqlstore: unknown driver %q", name)
}

func (d dialect) migrations() (fs.FS, error) {
	return fs.Sub(migrations, "migrations/"+d.name)
}

// sqliteDSN builds the modernc.org/sqlite DSN: WAL so readers never block the
// writer, a busy timeout, the chosen synchronous level, and (for the writer)
// BEGIN IMMEDIATE so a transaction takes the write lock up front instead of
// failing half-way with "database is locked".
func sqliteDSN(path, synchronous string, writer bool) string {
	if synchronous == "" {
		synchronous = "full"
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous("+strings.ToUpper(synchronous)+")")
	if writer {
		q.Set("_txlock", "immediate")
		// The commit that finds the WAL past this many pages copies it
		// back into the database file before it returns, and the acks
		// waiting on it wait for that too. Half SQLite's default halves
		// that stall: measured with authwatch load at a steady 11,000
		// req/s, ack p99 8.8–8.9 ms instead of 10.4–10.9, for 5–7 % fewer
		// acks/s in a closed loop (docs/BENCHMARKS.md).
		q.Add("_pragma", "wal_autocheckpoint(500)")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

// utf8Successor returns the smallest valid UTF-8 string greater, in byte
// order, than every string that starts with prefix: prefix with its last
// code point incremented (code points that cannot be incremented are
// dropped). PostgreSQL refuses the invalid byte 0xff in a text parameter, and
// UTF-8 byte order is code point order, so this is the tight upper bound of
// a prefix range under COLLATE "C".
func utf8Successor(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.RuneError && size <= 1, r == utf8.MaxRune:
			continue
		case r == 0xD7FF: // the next one, 0xD800, is a surrogate
			return prefix + string(rune(0xE000)), true
		default:
			return prefix + string(r+1), true
		}
	}
	return "", false
}

// uniqueViolation reports whether err is a unique constraint failure, in
// either dialect's words.
func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
