package frsql

import "authwatch/watcher"

// KnownFrom returns a Known function for SetKnown that asks state whether a
// source other than this one (source is "frsql:" + Config.Name) has the
// session open: RADIUS accounting and RouterOS report sessions under the
// same NAS name and Acct-Session-Id when Config.NAS maps the addresses to
// the names they use.
func KnownFrom(state *watcher.State, source string) func(nas, sessionID string) bool {
	return func(nas, sessionID string) bool {
		if nas == "" || sessionID == "" {
			return false
		}
		_, sessions := state.SessionsOn(nas)
		for _, ss := range sessions {
			if ss.ID == sessionID && ss.Source != source {
				return true
			}
		}
		return false
	}
}
