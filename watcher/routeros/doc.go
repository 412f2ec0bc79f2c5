// Package routeros is authwatch's MikroTik RouterOS source: it follows a
// router's PPP sessions and log over the RouterOS API and records what an
// agent needs — sessions coming and going, logins accepted and refused, the
// reason a session ended — as watcher events with Source "routeros:<name>"
// and NAS set to the router's name.
//
// One Source watches one router. Run keeps two API connections open (see
// conn.go for why two) and:
//
//   - follows /ppp/active with /ppp/active/listen, and reads the whole table
//     every PollInterval (10s) to resync; differences with what was recorded
//     become session.start, session.update (an IP assigned after the
//     0.0.0.0 placeholder) and session.stop. A router without listen is
//     polled only.
//   - follows /log with /log/listen, keeps the pppoe, ppp, radius and
//     account topics (not system: those are administrators), and turns the
//     lines into events through a table of RouterOS v6/v7 message formats
//     (logRules): "user X authentication failed" is an auth.reject,
//     "<pppoe-X>: authenticated" an auth.accept, "terminating... - peer is
//     not responding" becomes the reason of the session.stop that follows,
//     "RADIUS server … not responding" a NAS-wide log event; other lines
//     naming a login are log events, lines naming none are dropped and
//     counted.
//   - reconnects with exponential backoff and jitter after a dial timeout,
//     a refused login, a TLS failure or a dropped connection, and after
//     reconnecting compares a fresh read with what was recorded, so that
//     sessions that stayed up produce no event.
//
// At first start sessions already up are recorded as session.update, not
// session.start (they did not start now); Resume lets the caller pass the
// sessions the state still holds open from an earlier run, so those that
// ended meanwhile are stopped.
//
// RemoveSession ends a customer's session (/ppp/active/remove of the
// matching item) on the source's command connection, for "End session";
// Disconnect does the same over a connection of its own when no source is
// connected. Both need the API user's group to have the write policy.
//
// Status reports, per router, whether it is connected and since when, the
// last error, reconnects and counters, for /api/routers and /healthz.
//
// routerostest is a fake RouterOS API server speaking the real protocol,
// used by the tests and by `authwatch demo`. See README.md for the router
// side of the setup.
package routeros
