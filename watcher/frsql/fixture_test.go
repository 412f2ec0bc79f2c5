package frsql_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql" for the fixtures' own connections
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	"github.com/jmoiron/sqlx"

	"authwatch/watcher/frsql"
	"authwatch/watcher/frsql/mysqltest"
	"authwatch/watcher/sqlstore/pgtest"
)

func TestMain(m *testing.M) {
	// pgtest.Main (testserver.Main) stops PostgreSQL and MariaDB.
	pgtest.Main(m)
}

// The zone the test databases run in, and so the one the sources are told:
// not UTC, so that a time read in the wrong zone shows.
const zone = mysqltest.TimeZone

var sp = mustZone(zone)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// The FreeRADIUS 3.2 schemas of the two tables, written from the column
// lists of FreeRADIUS's published schema.sql (mods-config/sql/main/*/).

const mysqlSchema = `
CREATE TABLE radacct (
  radacctid bigint(21) NOT NULL AUTO_INCREMENT,
  acctsessionid varchar(64) NOT NULL DEFAULT '',
  acctuniqueid varchar(32) NOT NULL DEFAULT '',
  username varchar(64) NOT NULL DEFAULT '',
  realm varchar(64) DEFAULT '',
  nasipaddress varchar(15) NOT NULL DEFAULT '',
  nasportid varchar(32) DEFAULT NULL,
  nasporttype varchar(32) DEFAULT NULL,
  acctstarttime datetime NULL DEFAULT NULL,
  acctupdatetime datetime NULL DEFAULT NULL,
  acctstoptime datetime NULL DEFAULT NULL,
  acctinterval int(12) DEFAULT NULL,
  acctsessiontime int(12) unsigned DEFAULT NULL,
  acctauthentic varchar(32) DEFAULT NULL,
  connectinfo_start varchar(128) DEFAULT NULL,
  connectinfo_stop varchar(128) DEFAULT NULL,
  acctinputoctets bigint(20) DEFAULT NULL,
  acctoutputoctets bigint(20) DEFAULT NULL,
  calledstationid varchar(50) NOT NULL DEFAULT '',
  callingstationid varchar(50) NOT NULL DEFAULT '',
  acctterminatecause varchar(32) NOT NULL DEFAULT '',
  servicetype varchar(32) DEFAULT NULL,
  framedprotocol varchar(32) DEFAULT NULL,
  framedipaddress varchar(15) NOT NULL DEFAULT '',
  framedipv6address varchar(45) NOT NULL DEFAULT '',
  framedipv6prefix varchar(45) NOT NULL DEFAULT '',
  framedinterfaceid varchar(44) NOT NULL DEFAULT '',
  delegatedipv6prefix varchar(45) NOT NULL DEFAULT '',
  class varchar(64) DEFAULT NULL,
  PRIMARY KEY (radacctid),
  UNIQUE KEY acctuniqueid (acctuniqueid),
  KEY username (username),
  KEY framedipaddress (framedipaddress),
  KEY acctsessionid (acctsessionid),
  KEY acctstarttime (acctstarttime),
  KEY acctstoptime (acctstoptime),
  KEY nasipaddress (nasipaddress),
  KEY class (class)
) ENGINE = INNODB;
CREATE TABLE radpostauth (
  id int(11) NOT NULL AUTO_INCREMENT,
  username varchar(64) NOT NULL DEFAULT '',
  pass varchar(64) NOT NULL DEFAULT '',
  reply varchar(32) NOT NULL DEFAULT '',
  authdate timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  class varchar(64) DEFAULT NULL,
  PRIMARY KEY (id),
  KEY username (username),
  KEY class (class)
) ENGINE = INNODB;
`

// mysqlExtra is what ISP systems (MK-Auth and the like) add to radpostauth.
const mysqlExtra = `
ALTER TABLE radpostauth ADD nasipaddress varchar(15) NOT NULL DEFAULT '',
  ADD callingstationid varchar(50) NOT NULL DEFAULT '',
  ADD reply_message varchar(253) DEFAULT NULL;
`

const postgresSchema = `
CREATE TABLE radacct (
  RadAcctId bigserial PRIMARY KEY,
  AcctSessionId text NOT NULL,
  AcctUniqueId text NOT NULL UNIQUE,
  UserName text,
  Realm text,
  NASIPAddress inet NOT NULL,
  NASPortId text,
  NASPortType text,
  AcctStartTime timestamp with time zone,
  AcctUpdateTime timestamp with time zone,
  AcctStopTime timestamp with time zone,
  AcctInterval bigint,
  AcctSessionTime bigint,
  AcctAuthentic text,
  ConnectInfo_start text,
  ConnectInfo_stop text,
  AcctInputOctets bigint,
  AcctOutputOctets bigint,
  CalledStationId text,
  CallingStationId text,
  AcctTerminateCause text,
  ServiceType text,
  FramedProtocol text,
  FramedIPAddress inet,
  FramedIPv6Address inet,
  FramedIPv6Prefix inet,
  FramedInterfaceId text,
  DelegatedIPv6Prefix inet,
  Class text
);
CREATE INDEX radacct_active_session_idx ON radacct (AcctUniqueId) WHERE AcctStopTime IS NULL;
CREATE INDEX radacct_bulk_close ON radacct (NASIPAddress, AcctStartTime) WHERE AcctStopTime IS NULL;
CREATE INDEX radacct_start_user_idx ON radacct (AcctStartTime, UserName);
CREATE TABLE radpostauth (
  id bigserial PRIMARY KEY,
  username text NOT NULL,
  pass text,
  reply text,
  CalledStationId text,
  CallingStationId text,
  authdate timestamp with time zone NOT NULL default now(),
  Class text
);
`

// postgresExtra adds the NAS and the reply message, and keeps authdate
// without a zone, as some provider systems do.
const postgresExtra = `
ALTER TABLE radpostauth ADD nasipaddress inet, ADD reply_message text;
ALTER TABLE radpostauth ALTER authdate TYPE timestamp without time zone;
`

// fixture is one fresh database loaded with the schema, an administrator's
// connection to it, and a read-only user for the source.
type fixture struct {
	t         *testing.T
	driver    string
	extended  bool
	admin     *sqlx.DB
	dsn       string // the read-only user's
	user      string
	password  string
	naiveAuth bool // radpostauth.authdate has no zone
}

const roPassword = "s3cret-Pw-9f41"

type backend struct {
	name   string
	driver string
	new    func(t *testing.T, extended bool) *fixture
}

var backends = []backend{
	{"mariadb", frsql.MySQL, newMySQL},
	{"postgres", frsql.Postgres, newPostgres},
}

// eachBackend runs f against MariaDB and PostgreSQL.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func newMySQL(t *testing.T, extended bool) *fixture {
	t.Helper()
	ddl := mysqlSchema
	if extended {
		ddl += mysqlExtra
	}
	f, _ := mysqlFixture(t, ddl)
	f.extended = extended
	return f
}

// mysqlFixture loads ddl into a fresh database and makes the read-only user.
func mysqlFixture(t *testing.T, ddl string) (*fixture, mysqltest.DB) {
	t.Helper()
	db := mysqltest.Database(t)
	admin, err := sqlx.Open("mysql", db.RootDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	f := &fixture{t: t, driver: frsql.MySQL, admin: admin, user: "ro_" + db.Name, password: roPassword}
	f.script(ddl)
	f.script(fmt.Sprintf("CREATE USER '%s'@'localhost' IDENTIFIED BY '%s';\nGRANT SELECT ON %s.radpostauth TO '%s'@'localhost';\nGRANT SELECT ON %s.radacct TO '%s'@'localhost';\n",
		f.user, roPassword, db.Name, f.user, db.Name, f.user))
	f.dsn = db.DSN(f.user, roPassword)
	return f, db
}

func newPostgres(t *testing.T, extended bool) *fixture {
	t.Helper()
	dsn := pgtest.DSN(t)
	admin, err := sqlx.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var dbName string
	if err := admin.Get(&dbName, "SELECT current_database()"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, driver: frsql.Postgres, extended: extended, admin: admin, user: "ro_" + dbName, password: roPassword, naiveAuth: extended}
	// The database's zone, as a provider's server would have it.
	f.script(fmt.Sprintf("ALTER DATABASE %s SET timezone TO '%s';\n", dbName, zone))
	admin.SetMaxIdleConns(0) // new sessions pick up the zone
	admin.SetMaxIdleConns(2)
	f.script(postgresSchema)
	if extended {
		f.script(postgresExtra)
	}
	f.script(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s';\nGRANT SELECT ON radpostauth, radacct TO %s;\n", f.user, roPassword, f.user))
	f.dsn = regexp.MustCompile(`user=\S+`).ReplaceAllString(dsn, "user="+f.user) + " password=" + roPassword
	return f
}

// script runs statements separated by ";" at the end of a line; lines
// that are comments (#, --) are left out.
func (f *fixture) script(sql string) {
	f.t.Helper()
	for _, stmt := range strings.SplitAfter(sql+"\n", ";\n") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if tl := strings.TrimSpace(l); tl != "" && !strings.HasPrefix(tl, "#") && !strings.HasPrefix(tl, "--") {
				lines = append(lines, l)
			}
		}
		stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"))
		if stmt == "" {
			continue
		}
		f.exec(stmt)
	}
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.admin.ExecContext(ctx, f.admin.Rebind(q), args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

// ts writes t as the column takes it: the wall clock of the database's
// zone where the column keeps none (MySQL, PostgreSQL without time zone),
// else with its offset.
func (f *fixture) ts(t time.Time, naive bool) string {
	if f.driver == frsql.MySQL || naive {
		return t.In(sp).Format("2006-01-02 15:04:05")
	}
	return t.Format(time.RFC3339Nano)
}

// insert adds a row with the given columns.
func (f *fixture) insert(table string, cols map[string]any) {
	f.t.Helper()
	var names, marks []string
	var args []any
	for k, v := range cols {
		names = append(names, k)
		args = append(args, v)
		marks = append(marks, "?")
	}
	f.exec(fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(names, ", "), strings.Join(marks, ", ")), args...)
}

// auth is one radpostauth row.
type auth struct {
	login, pass, reply string
	at                 time.Time
	// Only with the extended schema (and mac with PostgreSQL's stock).
	nas, mac, msg string
}

func (f *fixture) postAuth(a auth) {
	f.t.Helper()
	cols := map[string]any{"username": a.login, "pass": a.pass, "reply": a.reply, "authdate": f.ts(a.at, f.naiveAuth)}
	if a.mac != "" && (f.extended || f.driver == frsql.Postgres) {
		cols["callingstationid"] = a.mac
	}
	if f.extended {
		if a.nas != "" {
			cols["nasipaddress"] = a.nas
		}
		if a.msg != "" {
			cols["reply_message"] = a.msg
		}
	}
	f.insert("radpostauth", cols)
}

// session is one radacct row as FreeRADIUS's start query writes it.
type session struct {
	id, login, nas, mac, ip, v6prefix, delegated string
	start                                        time.Time
}

func (f *fixture) start(s session) {
	f.t.Helper()
	cols := map[string]any{
		"acctsessionid": s.id, "acctuniqueid": "u-" + s.id, "username": s.login, "nasipaddress": s.nas,
		"nasportid": "ether1", "acctstarttime": f.ts(s.start, false), "acctupdatetime": f.ts(s.start, false),
		"callingstationid": s.mac, "calledstationid": "pppoe-svc", "framedipaddress": s.ip,
	}
	if f.driver == frsql.Postgres {
		// inet columns take NULL, not ''.
		for k, v := range cols {
			if v == "" {
				cols[k] = nil
			}
		}
	}
	if s.v6prefix != "" {
		cols["framedipv6prefix"] = s.v6prefix
	}
	if s.delegated != "" {
		cols["delegatedipv6prefix"] = s.delegated
	}
	f.insert("radacct", cols)
}

// interim is FreeRADIUS's interim-update query.
func (f *fixture) interim(id string, at time.Time, in, out int64) {
	f.t.Helper()
	f.exec("UPDATE radacct SET acctupdatetime = ?, acctsessiontime = ?, acctinputoctets = ?, acctoutputoctets = ? WHERE acctuniqueid = ?",
		f.ts(at, false), 300, in, out, "u-"+id)
}

// stop is FreeRADIUS's stop query.
func (f *fixture) stop(id string, at time.Time, cause string) {
	f.t.Helper()
	f.exec("UPDATE radacct SET acctstoptime = ?, acctupdatetime = ?, acctterminatecause = ?, acctsessiontime = ? WHERE acctuniqueid = ?",
		f.ts(at, false), f.ts(at, false), cause, 600, "u-"+id)
}

// revoke and grant take SELECT on a table from the source's user and give
// it back.
func (f *fixture) revoke(table string) {
	f.t.Helper()
	if f.driver == frsql.MySQL {
		f.exec(fmt.Sprintf("REVOKE SELECT ON %s FROM '%s'@'localhost'", table, f.user))
		return
	}
	f.exec(fmt.Sprintf("REVOKE SELECT ON %s FROM %s", table, f.user))
}

func (f *fixture) grant(table string) {
	f.t.Helper()
	if f.driver == frsql.MySQL {
		f.exec(fmt.Sprintf("GRANT SELECT ON %s TO '%s'@'localhost'", table, f.user))
		return
	}
	f.exec(fmt.Sprintf("GRANT SELECT ON %s TO %s", table, f.user))
}
