package app

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"

	"authwatch/internal/config"
	"authwatch/webui/auth"
)

// newAuth builds the accounts service from [auth], or returns nil for desk
// mode ([http] auth = false, which config accepts on loopback only).
func newAuth(cfg *config.Config, st auth.Store, log *slog.Logger) (*auth.Service, error) {
	if !cfg.HTTP.Auth {
		log.Warn("http: desk mode: no login, every request acts as a local admin and no audit log is kept", "listen", cfg.HTTP.Listen)
		return nil, nil
	}
	a := cfg.Auth
	return auth.New(auth.Options{
		Store:       st,
		SessionIdle: a.SessionIdle.D(), SessionMax: a.SessionMax.D(),
		ProxyHeader: a.ProxyHeader, TrustedProxies: a.TrustedPrefixes(),
		FailuresPerUser: a.LoginFailuresPerUser, FailuresPerAddress: a.LoginFailuresPerAddress, FailureWindow: a.LoginWindow.D(),
		AuditRetention: a.AuditRetention.D(),
		Logger:         log,
	})
}

// warnNoAccounts says so at start when the page asks for a login and no
// account exists yet: otherwise the first sign is a login screen that
// refuses everyone.
func warnNoAccounts(ctx context.Context, a *auth.Service, log *slog.Logger) {
	if a == nil {
		return
	}
	users, err := a.Users(ctx)
	if err == nil && len(users) == 0 {
		log.Warn("http: no accounts yet, so nobody can log in to the page; create the first admin with: authwatch user add -config FILE -role admin NAME")
	}
}

// warnPlainHTTP says so at start when passwords and session cookies would
// cross the network in clear: a non-loopback address, no TLS of our own and
// no TLS-terminating proxy in front.
func (d *Daemon) warnPlainHTTP() {
	h := d.cfg.HTTP
	if config.IsLoopback(h.Listen) || h.TLS() || len(d.cfg.Auth.TrustedProxies) > 0 {
		return
	}
	d.log.Warn("http: listening on a non-loopback address without TLS: passwords, session cookies and customers' data cross the network in clear; set http.tls_cert and http.tls_key, or put a TLS reverse proxy in front and list it in auth.trusted_proxies",
		"listen", h.Listen)
}

// serve runs srv on the HTTP listener, over TLS when configured.
func (d *Daemon) serve(srv *http.Server) error {
	h := d.cfg.HTTP
	if !h.TLS() {
		return srv.Serve(d.httpLn)
	}
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return srv.ServeTLS(d.httpLn, h.TLSCert, h.TLSKey)
}

// URL is the page's address as the daemon serves it.
func (d *Daemon) URL() string {
	scheme := "http://"
	if d.cfg.HTTP.TLS() {
		scheme = "https://"
	}
	return scheme + d.HTTPAddr() + "/"
}

// Auth is the accounts service, nil in desk mode.
func (d *Daemon) Auth() *auth.Service { return d.auth }

// expireSessions deletes expired web sessions now and then.
func (d *Daemon) expireSessions(ctx context.Context) error {
	if d.auth == nil {
		return nil
	}
	return d.auth.Run(ctx)
}
