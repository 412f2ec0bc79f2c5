package frlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"authwatch/watcher"
)

// Timing of the source, named so the choices are visible.
const (
	// pollEvery is how often the file is looked at without being told:
	// fsnotify misses changes on NFS and some other file systems, and the
	// directory may not exist yet.
	pollEvery = time.Second
	// rotateGrace is how long a file renamed away is still read after
	// its last line: FreeRADIUS writes to it until a HUP makes it reopen
	// its log.
	rotateGrace = 10 * time.Second
	// saveEvery bounds how often a position that moved over lines without
	// events (Info, Error…) is saved; after events it is saved at once.
	saveEvery = time.Second
	// errorLogEvery rate-limits repeating the same error in the log.
	errorLogEvery = time.Minute
	// unknownLogEvery rate-limits the log line about skipped lines.
	unknownLogEvery = 10 * time.Second
	// restoreRetry is the wait between attempts to read the saved
	// position from a store that fails.
	restoreRetry = 2 * time.Second
)

// Recorder is where the source hands its events: Commit stores them durably
// and returns once they are (or with the error that kept them out).
// *watcher.Recorder is one.
type Recorder interface {
	Commit(ctx context.Context, evs ...watcher.Event) ([]watcher.Event, error)
}

var _ Recorder = (*watcher.Recorder)(nil)

// Status is how following one log file is going, for /healthz and the
// sources' status page.
type Status struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Open says the file is open; Inode, Offset and Size describe it
	// (Offset is where the next unread line starts).
	Open   bool   `json:"open"`
	Inode  uint64 `json:"inode,omitempty"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	// Notify says fsnotify watches the file's directory; otherwise the
	// file is only polled (every second).
	Notify bool `json:"notify"`
	// LastLine is when a line was last read.
	LastLine time.Time `json:"last_line,omitzero"`
	// Lines counts lines read; Events the events recorded from them;
	// Unknown lines of a shape the parser does not know (skipped, and not
	// logged, since they may hold passwords); Ignored other FreeRADIUS
	// lines (Info, Error…); Merged the second line FreeRADIUS 3.2 writes
	// for one reject.
	Lines   int64 `json:"lines"`
	Events  int64 `json:"events"`
	Unknown int64 `json:"unknown"`
	Ignored int64 `json:"ignored"`
	Merged  int64 `json:"merged"`
	// Rotations counts files renamed or removed under the reader;
	// Truncations files truncated (copytruncate).
	Rotations   int64 `json:"rotations"`
	Truncations int64 `json:"truncations"`
	// LastError is the last thing that went wrong (opening the file, the
	// store); it stays after recovery, with its time.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Source follows one FreeRADIUS log file and records its authentication
// lines as watcher events with Source "freeradius:<name>".
type Source struct {
	cfg       Config
	cfgErr    error
	loc       *time.Location
	rec       Recorder
	positions watcher.PositionStore
	log       *slog.Logger
	source    string

	// Set by tests.
	pollEvery time.Duration
	noNotify  bool
	now       func() time.Time
	tick      <-chan time.Time // replaces the poll ticker
	stepped   chan<- struct{}  // told after every step
	ready     chan struct{}    // closed after the first step

	running atomic.Bool

	lines, events, unknown, ignored, merged, rotations, truncations atomic.Int64

	mu sync.Mutex
	st Status // the fields not kept in the counters above

	// Owned by Run's goroutine.
	cur         *tracked   // the file at cfg.Path
	firstRun    bool       // no position was saved and the file has not been opened yet
	olds        []*tracked // files rotated away, still being read
	merge       merger
	buf         []byte
	dirty       bool // the position moved since it was last saved
	savedAt     time.Time
	lastErrLog  string
	lastErrTime time.Time
	failing     bool
	lastUnkLog  time.Time
	unkLogged   int64
}

// New returns a source for one log file. cfg is validated by Run (and should
// be at start, with Validate). positions keeps the reading position across
// restarts; with nil every run starts like a first one. logger may be nil.
func New(cfg Config, rec Recorder, positions watcher.PositionStore, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Source{
		cfg:       cfg,
		cfgErr:    cfg.Validate(),
		rec:       rec,
		positions: positions,
		source:    "freeradius:" + cfg.Name,
		pollEvery: pollEvery,
		now:       time.Now,
	}
	s.log = logger.With("source", s.source)
	if s.cfgErr == nil {
		s.loc, _ = cfg.location()
	}
	s.st = Status{Name: cfg.Name, Path: cfg.Path}
	return s
}

// Name returns the source's name from the configuration.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns how following the file is going.
func (s *Source) Status() Status {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	st.Lines, st.Events, st.Unknown = s.lines.Load(), s.events.Load(), s.unknown.Load()
	st.Ignored, st.Merged = s.ignored.Load(), s.merged.Load()
	st.Rotations, st.Truncations = s.rotations.Load(), s.truncations.Load()
	return st
}

// Run follows the file until ctx ends. It returns nil then, and an error
// only for a configuration that can never work; a missing or unreadable
// file, or a failing store, is reported in Status and retried. Every
// goroutine it starts (fsnotify's) has ended when it returns. Run must not
// be called twice at once.
func (s *Source) Run(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("freeradius_log %q: already running", s.cfg.Name)
	}
	defer s.running.Store(false)
	defer s.closeAll()
	s.buf = make([]byte, chunkSize)

	dir := filepath.Dir(s.cfg.Path)
	var w *fsnotify.Watcher
	if !s.noNotify {
		var err error
		if w, err = fsnotify.NewWatcher(); err != nil {
			s.log.Warn("freeradius log: file notifications unavailable; polling only", "err", err, "every", s.pollEvery)
			w = nil
		} else {
			defer w.Close()
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}

	saved, ok := s.loadPosition(ctx)
	if !ok {
		return nil // ctx ended
	}
	s.log.Info("freeradius log: following", "path", s.cfg.Path, "resume", saved != nil)
	restored := false

	poll := time.NewTicker(s.pollEvery)
	defer poll.Stop()
	tick := poll.C
	if s.tick != nil {
		tick = s.tick
	}
	for {
		if w != nil && !slices.Contains(w.WatchList(), dir) {
			// The directory may not exist yet, or may have been
			// removed and made again; polling covers the meantime.
			s.setNotify(w.Add(dir) == nil)
		}
		if !restored {
			restored = s.restore(saved)
		}
		if restored {
			err := s.step(ctx)
			if err == nil {
				err = s.maybeSave(ctx, false)
			}
			s.noteErr(err)
		}
		s.logUnknown()
		if s.ready != nil {
			close(s.ready)
			s.ready = nil
		}
		if s.stepped != nil {
			select {
			case s.stepped <- struct{}{}:
			case <-ctx.Done():
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := s.maybeSave(sctx, true); err != nil {
					s.log.Warn("freeradius log: position not saved at stop; the last lines may be read again", "err", err)
				}
				cancel()
				return nil
			case <-tick:
				break wait
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if s.concerns(ev.Name) {
					break wait
				}
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				// An overflow of the kernel's queue: changes were
				// missed, so look now.
				s.log.Debug("freeradius log: notification error", "err", err)
				break wait
			}
		}
	}
}

// concerns reports whether a change to name may matter: the log, a rotated
// file, or the directory itself.
func (s *Source) concerns(name string) bool {
	name = filepath.Clean(name)
	return name == filepath.Dir(s.cfg.Path) || strings.HasPrefix(name, s.cfg.Path)
}

// loadPosition reads the saved position, retrying while the store fails: a
// guess would replay or skip lines. It returns nil when there is none, and
// false when ctx ended.
func (s *Source) loadPosition(ctx context.Context) (*position, bool) {
	if s.positions == nil {
		return nil, true
	}
	for {
		b, err := s.positions.LoadPosition(ctx, s.source)
		switch {
		case errors.Is(err, watcher.ErrNotFound):
			return nil, true
		case err == nil:
			p, err := decodePosition(b)
			if err != nil {
				s.log.Warn("freeradius log: saved position unusable; starting as on a first run", "err", err)
				return nil, true
			}
			if p.Path != s.cfg.Path {
				s.log.Info("freeradius log: path changed since the position was saved; starting as on a first run", "was", p.Path)
				return nil, true
			}
			return p, true
		}
		s.noteErr(fmt.Errorf("load position: %w", err))
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(restoreRetry):
		}
	}
}

// maybeSave saves the position when it moved: at once when force is set,
// otherwise at most every saveEvery.
func (s *Source) maybeSave(ctx context.Context, force bool) error {
	if !s.dirty || s.positions == nil {
		return nil
	}
	if !force && s.now().Sub(s.savedAt) < saveEvery {
		return nil
	}
	return s.savePosition(ctx)
}

// savePosition saves where reading got to.
func (s *Source) savePosition(ctx context.Context) error {
	if s.positions == nil {
		s.dirty = false
		return nil
	}
	p := position{V: positionVersion, Path: s.cfg.Path}
	if s.cur != nil {
		fp := s.cur.pos()
		p.File = &fp
	}
	for _, t := range s.olds {
		p.Old = append(p.Old, t.pos())
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode position: %w", err)
	}
	if err := s.positions.SavePosition(ctx, s.source, b); err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	s.dirty, s.savedAt = false, s.now()
	return nil
}

// noteErr records the outcome of a step: an error goes to Status and, unless
// it just did, to the log.
func (s *Source) noteErr(err error) {
	if err == nil {
		if s.failing {
			s.failing = false
			s.log.Info("freeradius log: recovered")
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	now := s.now()
	err = fmt.Errorf("freeradius_log %q: %w", s.cfg.Name, err)
	s.mu.Lock()
	s.st.LastError, s.st.LastErrorAt = err.Error(), now
	s.mu.Unlock()
	s.failing = true
	if msg := err.Error(); msg != s.lastErrLog || now.Sub(s.lastErrTime) >= errorLogEvery {
		s.lastErrLog, s.lastErrTime = msg, now
		s.log.Warn("freeradius log: not following; will retry", "err", err)
	}
}

// logUnknown says, now and then, that lines were skipped. Their text is not
// logged: an unparsed line may hold a password.
func (s *Source) logUnknown() {
	n := s.unknown.Load()
	if n == s.unkLogged || s.now().Sub(s.lastUnkLog) < unknownLogEvery {
		return
	}
	s.log.Warn("freeradius log: lines of an unknown shape skipped (their text is not logged)", "new", n-s.unkLogged, "total", n)
	s.unkLogged, s.lastUnkLog = n, s.now()
}

func (s *Source) setNotify(on bool) {
	s.mu.Lock()
	s.st.Notify = on
	s.mu.Unlock()
}

// setFileStatus publishes the current file's state.
func (s *Source) setFileStatus() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		s.st.Open, s.st.Inode, s.st.Offset, s.st.Size = false, 0, 0, 0
		return
	}
	s.st.Open, s.st.Inode, s.st.Offset, s.st.Size = true, s.cur.id.ino, s.cur.off, s.cur.size
}

func (s *Source) closeAll() {
	if s.cur != nil {
		s.cur.f.Close()
		s.cur = nil
	}
	for _, t := range s.olds {
		t.f.Close()
	}
	s.olds = nil
	s.setFileStatus()
}
