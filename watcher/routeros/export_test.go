package routeros

import "time"

// WithRecheckAfter returns cfg with the second session check due after d,
// so that tests need not wait the real delay.
func WithRecheckAfter(cfg Config, d time.Duration) Config {
	cfg.recheckAfter = d
	return cfg
}
