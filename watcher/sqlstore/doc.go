// Package sqlstore is the watcher.Store kept in a SQL database through sqlx:
// SQLite by default (the pure-Go modernc.org/sqlite driver, no cgo, WAL mode),
// PostgreSQL to scale out (pgx through its database/sql driver). What differs
// between the two lives in dialect.go; the schema is a set of goose
// migrations per dialect under migrations/, embedded in the binary and
// applied at Open.
//
// Durability: Append returns only after COMMIT. With SQLite the default
// synchronous=FULL makes a committed batch survive a power cut; "normal"
// survives a crash of the process but not of the machine. With PostgreSQL it
// rests on the server's synchronous_commit (on by default).
//
// PostgreSQL may be shared by several authwatch instances. The database then
// assigns seq, and Append makes commit order seq order across instances
// (appendPostgres says how); a Follower delivers every instance's events to
// this one in seq order, woken by LISTEN/NOTIFY and by its own commits; and
// Locks (session-level advisory locks) let one instance at a time do what
// should be done once. docs/DEPLOY-POSTGRES.md describes a deployment.
//
// pgtest starts a throwaway PostgreSQL server for the tests; the store's
// tests run on both databases.
package sqlstore
