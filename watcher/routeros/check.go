package routeros

import (
	"context"
	"log/slog"
)

// Check connects to the router once, logs in and reads its identity and
// version, then hangs up: what `authwatch check -connect` does for each
// router. The error reads like the source's ("routeros "x": login as …").
func Check(ctx context.Context, cfg Config) (identity, version string, err error) {
	s := New(cfg, nil, slog.New(slog.DiscardHandler))
	if s.cfgErr != nil {
		return "", "", s.cfgErr
	}
	pw, err := s.cfg.password()
	if err != nil {
		return "", "", s.errf("%w", err)
	}
	link, err := dialLink(ctx, s.cfg, pw, s.onFraming)
	if err != nil {
		return "", "", s.errf("%w", err)
	}
	defer link.close(s.log)
	return s.check(link)
}
