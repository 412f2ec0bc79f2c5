package sqlstore

import (
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

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
}

var sqliteDialect = dialect{
	name:        "sqlite",
	driver:      "sqlite",
	goose:       goose.DialectSQLite3,
	bind:        sqlx.QUESTION,
	seqInWriter: true,
	maxParams:   32766,
}

func init() {
	// modernc.org/sqlite registers as "sqlite", a name sqlx does not know.
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

func dialectFor(name string) (dialect, error) {
	switch name {
	case "", "sqlite":
		return sqliteDialect, nil
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
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}
