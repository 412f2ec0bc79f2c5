// Package sqlstore is the watcher.Store kept in a SQL database through sqlx:
// SQLite by default (the pure-Go modernc.org/sqlite driver, no cgo, WAL mode),
// PostgreSQL to scale out. What differs between the two lives in dialect.go;
// the schema is a set of goose migrations per dialect under migrations/,
// embedded in the binary and applied at Open.
//
// Durability: Append returns only after COMMIT. With SQLite the default
// synchronous=FULL makes a committed batch survive a power cut; "normal"
// survives a crash of the process but not of the machine.
package sqlstore
