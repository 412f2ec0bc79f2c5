package routerostest

import (
	"fmt"
	"time"
)

// The helpers below play what a concentrator shows when a customer's router
// comes and goes — /ppp/active and the log lines together, in the order
// RouterOS writes them — so that `authwatch demo` and tests need not know
// the formats. The log lines follow the v7 shapes in DOMAIN.md.

// ConnectSession plays a successful PPPoE login: the discovery line,
// "authenticated", "connected", the session in /ppp/active with the 0.0.0.0
// placeholder, then its address and the account line. It returns the
// session's .id.
func (s *Server) ConnectSession(ss Session) string {
	addr := ss.Address
	if ss.CallerID != "" {
		s.AppendLog("pppoe,info", "PPPoE connection established from "+ss.CallerID)
	}
	s.AppendLog("pppoe,ppp,info", fmt.Sprintf("<pppoe-%s>: authenticated", ss.Name))
	s.AppendLog("pppoe,ppp,info", fmt.Sprintf("<pppoe-%s>: connected", ss.Name))
	ss.Address = "0.0.0.0"
	id := s.AddSession(ss)
	if addr != "" && addr != "0.0.0.0" {
		s.SetSessionAddress(id, addr)
		line := fmt.Sprintf("%s logged in, %s", ss.Name, addr)
		if ss.CallerID != "" {
			line += " from " + ss.CallerID
		}
		s.AppendLog("pppoe,ppp,info,account", line)
	}
	return id
}

// DisconnectSession plays the end of the session with .id (or name)
// idOrName: "terminating... - reason" (e.g. "peer is not responding" for a
// power cut, "hungup" for a clean disconnect), "disconnected", the account
// line with made-up counters, and its removal from /ppp/active. It reports
// whether there was such a session.
func (s *Server) DisconnectSession(idOrName, reason string) bool {
	var found *Session
	for _, ss := range s.Sessions() {
		if ss.ID == idOrName || ss.Name == idOrName {
			found = &ss
			break
		}
	}
	if found == nil {
		return false
	}
	iface := "<pppoe-" + found.Name + ">"
	s.AppendLog("pppoe,ppp,info", iface+": terminating... - "+reason)
	s.AppendLog("pppoe,ppp,info", iface+": disconnected")
	secs := 0
	s.mu.Lock()
	if _, it := s.menus[PPPActive].find(found.ID); it != nil {
		secs = int(time.Since(it.since) / time.Second)
	}
	s.mu.Unlock()
	line := fmt.Sprintf("%s logged out, %d %d %d %d %d", found.Name, secs, 1200*secs+512, 9000*secs+2048, 10*secs+3, 12*secs+4)
	if found.CallerID != "" {
		line += " from " + found.CallerID
	}
	s.AppendLog("pppoe,ppp,info,account", line)
	return s.RemoveSession(found.ID)
}

// RejectLogin plays a refused login (wrong password, blocked customer):
// the discovery line when mac is given, then "user NAME authentication
// failed" on a not-yet-named interface.
func (s *Server) RejectLogin(name, mac string) {
	if mac != "" {
		s.AppendLog("pppoe,info", "PPPoE connection established from "+mac)
	}
	s.mu.Lock()
	n := s.logSeq
	s.mu.Unlock()
	s.AppendLog("pppoe,ppp,error", fmt.Sprintf("<%04x>: user %s authentication failed", n&0xffff, name))
}
