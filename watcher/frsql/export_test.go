package frsql

import "time"

// Steps makes Run report every step, with its error, on the returned
// channel, which must be drained.
func Steps(s *Source) <-chan error {
	c := make(chan error, 16)
	s.stepped = c
	return c
}

// Tune sets the source's batch size (rows per query), the longest backoff
// and how often radacct is swept, to make paging, recovery and late rows
// quick to test.
func Tune(s *Source, batch int, backoffMax, sweepEvery time.Duration) {
	if sweepEvery > 0 {
		s.sweepEvery = sweepEvery
	}
	if batch > 0 {
		s.batch = batch
	}
	if backoffMax > 0 {
		s.backoffMax = backoffMax
	}
}

// Queries returns every query the source built from the columns it
// detected; call it after Run returned.
func Queries(s *Source) []string {
	var out []string
	if s.pa != nil {
		out = append(out, s.pa.newRows(s.d, 10), s.pa.rowsByID(s.d, 3))
	}
	if s.ac != nil {
		out = append(out, s.ac.newRows(s.d, 10), s.ac.rowsByID(s.d, 3), s.ac.changedRows(s.d, "stop_time", 10))
		if s.ac.has("update_time") {
			out = append(out, s.ac.changedRows(s.d, "update_time", 10))
		}
	}
	return out
}
