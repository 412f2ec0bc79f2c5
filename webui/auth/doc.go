// Package auth is who may read customers' sessions in authwatch: accounts
// with a role, web sessions, API tokens, the login rate limit, an optional
// trusted reverse-proxy header, and the audit log of who looked at which
// customer.
//
// Roles: an agent reads customers and runs reboot watches; an admin also sees
// the NAS and router health, manages accounts and reads the audit log.
//
// Credentials are never stored in the clear: passwords as bcrypt hashes,
// session ids and API tokens (random 256-bit values) as their SHA-256. A web
// session is the cookie authwatch_session (HttpOnly, SameSite=Lax, Secure
// over TLS) with an idle and an absolute expiry; each session has a CSRF
// token that cookie-authenticated state-changing requests must echo in the
// X-CSRF-Token header. API tokens are sent as "Authorization: Bearer …" and
// revoked by id.
//
// The Service holds the rules; the Store (watcher/sqlstore implements it)
// holds the rows. The webui package applies the Service to every route.
package auth
