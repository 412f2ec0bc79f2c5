package frsql

import (
	"context"
	"fmt"
	"strings"
)

// Check does what the first poll does before reading rows — connect, find
// the followed tables and their columns — and reads zero rows of each with
// the very SELECT the source runs, so that a missing grant shows too. It
// reads no row and leaves the saved position alone: it is for `authwatch
// check -connect`. Errors have the DSN's password scrubbed.
func (s *Source) Check(ctx context.Context) (string, error) {
	if s.cfgErr != nil {
		return "", fmt.Errorf("sql_source %q: %w", s.cfg.Name, s.cfgErr)
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("%s", scrub(fmt.Sprintf("%v%s", err, hint(err)), s.secret))
	}
	db, err := s.open()
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	var found []string
	for _, t := range []struct {
		follow bool
		table  table
		name   string
	}{{s.cfg.FollowPostAuth(), postAuthTable, s.cfg.PostAuthTable}, {s.cfg.FollowAcct(), acctTable, s.cfg.AcctTable}} {
		if !t.follow {
			continue
		}
		sch, err := detect(ctx, db, s.d, s.cfg, t.table, t.name)
		if err != nil {
			return fail(err)
		}
		rows, err := db.QueryContext(ctx, db.Rebind(sch.newRows(s.d, 0)), 0)
		if err != nil {
			return fail(fmt.Errorf("table %s: %w", t.name, err))
		}
		rows.Close()
		found = append(found, fmt.Sprintf("%s (%d columns read)", t.name, len(sch.cols)))
	}
	return strings.Join(found, ", "), nil
}
