// Package frsql follows the tables FreeRADIUS's rlm_sql writes — radpostauth
// (every authentication attempt) and radacct (every session) — in MySQL,
// MariaDB or PostgreSQL, and records what they show as watcher events with
// Source "frsql:<name>": auth.accept and auth.reject from radpostauth,
// session.start, session.update and session.stop from radacct. It needs no
// change to the network: a read-only database user is enough. Provider
// systems built on FreeRADIUS (MK-Auth and the like) keep these tables too.
//
// # Reading the tables
//
// radpostauth is read by increasing id. radacct is read three ways each
// poll: new rows by increasing radacctid (a session.start, or a
// session.stop when the row is already stopped), then rows whose
// acctupdatetime moved (session.update with the counters, open rows only),
// then rows whose acctstoptime was set (session.stop with
// acctterminatecause as the reason), each by a (time, radacctid) keyset.
// Every query names its columns, detected at connect from
// information_schema: the password column of radpostauth is never read, and
// a mapping to it is refused.
//
// Rows may become visible out of order: an insert that took a lower id
// commits after a higher one (ids skipped are looked for again for 30
// seconds), and acctupdatetime / acctstoptime come from the NAS's
// Event-Timestamp or FreeRADIUS's clock, not the commit (radacct is swept
// again every 10 seconds from a minute before the database's clock, and
// changes already recorded are remembered and skipped). A change that
// becomes visible more than a minute late is missed.
//
// # Positions
//
// How far each table was read is saved in a watcher.PositionStore under
// "frsql:<name>" after every batch of events is committed, so a restart
// neither replays nor skips rows. A first run starts from the present
// (Config.Backfill reads some hours before it); a table that was emptied or
// recreated (its ids went down) is read again from its start.
//
// # Sessions seen by other sources
//
// RADIUS accounting and the RouterOS API may report the same sessions.
// Their events and this source's meet in the customer's state, which keys a
// session by NAS name and Acct-Session-Id: Config.NAS maps the addresses in
// nasipaddress to the NAS names the other sources use. With SetKnown (see
// KnownFrom), a radacct row whose session another source already has open
// when this source first sees it is left to that source entirely — start,
// updates and stop — so its timeline shows each fact once; rows of sessions
// nobody else reports are recorded. Without it every row is recorded and
// the state still holds one session, with some facts twice in the history.
//
// # Failures
//
// An unreachable database, a missing table or column, a refused SELECT or
// a failing store stop nothing: Status says what is wrong (for /healthz and
// the admin page), and the source retries with backoff, looking at the
// schema again. The DSN, and the password in it, never reach a log or the
// status.
package frsql
