package watcher

import "context"

// PositionStore keeps how far a source that reads something sequential (a
// log file, a table with an increasing id) has got, so that after a restart
// it resumes exactly there: nothing read twice, nothing skipped. A position
// is opaque to the store; each source encodes its own.
type PositionStore interface {
	// SavePosition replaces the position kept for source.
	SavePosition(ctx context.Context, source string, pos []byte) error
	// LoadPosition returns the position kept for source, or ErrNotFound.
	LoadPosition(ctx context.Context, source string) ([]byte, error)
}
