// Package webui is authwatch's HTTP face: a small JSON API over the customers'
// state and stored events, a websocket that streams one login's events (or
// all of them) live, and an embedded page that support agents open in a
// browser to watch a customer's PPPoE session come back after a router reboot.
//
// Routes (all listed in Server.routes, each with its access level: public,
// agent or admin; the ones not marked are agent):
//
//	GET /                                   the page (static/index.html); public
//	GET /login.html                         the login screen; public
//	GET /static/…                           its ES modules, style sheet and icon; public
//	GET /healthz                            health, 503 when failing; public (details: admin)
//	GET /metrics                            Options.Metrics, when given; public
//	POST /api/login                         {"username","password"} → cookie; public
//	POST /api/logout                        ends the web session
//	GET /api/me                             {"user","role","csrf","auth","may_disconnect"}
//	GET /api/customers/{login}              current state of one login
//	GET /api/customers/{login}/events       stored events (?since=SEQ&before=SEQ&limit=N)
//	GET /api/lookup?q=…                     logins by login prefix, MAC or IP
//	GET /api/routers                        RouterOS routers' connections; admin
//	GET /api/audit?login=&user=&limit=      who accessed which customer; admin
//	GET|POST /api/users, PATCH /api/users/{name}  accounts; admin
//	GET /api/outages                        mass-outage notices in force
//	GET /api/watches                        reboot watches running now
//	POST /api/watches                       start a reboot watch
//	GET|DELETE /api/watches/{id}            one watch; DELETE ends it
//	GET /api/watches/{id}/summary           the ticket text (?lang=&tz=)
//	POST /api/customers/{login}/probe       test the CPE's HTTP page now
//	POST /api/customers/{login}/disconnect  end a stale session at the NAS ({"session_id"} optional) →
//	                                        {"result","via","detail"}; admins, agents when allowed (disconnect.go)
//	GET /ws?login=LOGIN&since=SEQ           live events; login=* is the firehose
//
// Errors are always JSON, {"error": "..."}, with a 4xx or 5xx status.
//
// # Access
//
// Every route but the public ones needs credentials (package auth): the
// authwatch_session cookie from POST /api/login, an API token in
// "Authorization: Bearer …", or the trusted reverse proxy's header; else 401
// {"error":"login required"}, and 403 for an agent on an admin route.
// POST, PUT, PATCH and DELETE authenticated by the cookie must carry the
// session's CSRF token in X-CSRF-Token, and every browser-borne one must
// come from our own origin (or Options.AllowedOrigins). Reading a
// customer's data writes the audit log first; when it cannot, the request is
// refused. With Options.Desk (a loopback-only server without accounts)
// every request acts as a local admin, answered only for loopback host
// names. A websocket whose credentials end (logout, expiry, revoked token,
// disabled account) is closed with code 4401.
//
// # Websocket protocol
//
// The server speaks first and the client only listens. The first message is
//
//	{"type":"snapshot","state":{…},"events":[…],"seq":N,"truncated":bool,"reset":bool}
//
// where state is the login's Customer (see GET /api/customers/{login}) or, for
// the firehose, watcher.Stats; events are the stored events with seq > since
// (or the newest 100 when since is absent), oldest first; and seq is the
// resume cursor: the client reconnects with since = the highest of seq and the
// last event seq it saw. Then, for every event committed afterwards,
//
//	{"type":"event","event":{…},"state":{…}}
//
// (state: on single-login streams the login's state after the event, on the
// firehose fresh watcher.Stats on some events, at most every 5 s), and
// occasionally {"type":"state","state":{…}} when the state moved on without an
// event the client has not seen yet. A client may send {"type":"ping"} and
// gets {"type":"pong"}; anything else it sends is ignored.
//
// Resume is gapless and duplicate-free: the connection subscribes to the hub
// before it reads the store, and forwards a live event only when its seq is
// above the last seq already sent. When more than 1000 events were missed the
// snapshot carries the newest 1000 and "truncated": true (the page says so;
// the rest is in GET /api/customers/{login}/events). When since is beyond
// anything the store has (the database was replaced, e.g. a new demo run) the
// snapshot carries the newest events and "reset": true, and the client should
// drop what it shows.
//
// A client that does not keep up is cut off by the hub; its connection is
// closed with code 1013 (try again later) and the reason "too slow, reconnect
// with since=N". Server.Close closes every websocket with code 1001.
package webui
