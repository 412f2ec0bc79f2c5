package frlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"authwatch/watcher"
)

// Reading sizes.
const (
	// chunkSize is how much is read at once; the complete lines in it
	// become one commit.
	chunkSize = 256 << 10
	// maxLine is the longest line parsed; FreeRADIUS's own buffer is far
	// shorter, so anything longer is not one of its lines.
	maxLine = 64 << 10
)

// tracked is one open file being read.
type tracked struct {
	f    *os.File
	fi   os.FileInfo // from when it was opened: os.SameFile compares with it
	id   fileID
	name string // the name it was opened by
	off  int64  // where the first line not yet recorded starts
	size int64  // as last seen
	head string // timestamp of its first line, "" until known
	// last is the hash of the last line read and lastLen its length
	// (newline included), kept in memory only: they recognise the copy
	// copytruncate made, which ends with that line at off.
	last    [sha256.Size]byte
	lastLen int64
	skip    bool // the next line is the tail of an over-long line
	// until is when a rotated file stops being read: rotateGrace after a
	// line was last read from it, since FreeRADIUS goes on writing to a
	// file renamed away until it is told (HUP) to reopen its log.
	until time.Time
	copy  bool // the copy copytruncate made: read once, it does not grow
}

func (t *tracked) pos() filePos {
	return filePos{Dev: t.id.dev, Inode: t.id.ino, Offset: t.off, Head: t.head}
}

// openFile opens name for reading; a file that does not exist is (nil, nil).
func openFile(name string) (*tracked, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("open %s: %w (authwatch only reads the file, but needs read permission on it: see README.md)", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return &tracked{f: f, fi: fi, id: idOf(fi), name: name, size: fi.Size(), head: headOf(f)}, nil
}

// restore opens the file at the start of Run and decides where to read from,
// given the saved position (nil on a first run). It returns false when it
// cannot decide yet — the file is there but cannot be opened, and a guess
// could replay or skip lines — and is then called again.
func (s *Source) restore(saved *position) bool {
	cur, err := openFile(s.cfg.Path)
	if err != nil {
		s.noteErr(err)
		if saved != nil {
			return false
		}
		// There but unreadable on a first run: once it opens, it is
		// read from its end.
		s.firstRun = true
		return true
	}
	now := s.now()
	defer s.setFileStatus()
	if saved == nil {
		if cur != nil {
			s.startAtEnd(cur)
		} else {
			// Absent: when it appears all of it is new. Saved now, so
			// that a restart knows this was not a first run.
			s.dirty = true
		}
		return true
	}
	// Rotated files that were still being read: finish them.
	for _, o := range saved.Old {
		if t := findFile(s.cfg.Path, o, nil); t != nil {
			t.off, t.until = o.Offset, now.Add(rotateGrace)
			s.olds = append(s.olds, t)
		} else {
			s.log.Warn("freeradius log: a rotated file read before the restart is gone; its last lines are lost", "inode", o.Inode, "offset", o.Offset)
		}
	}
	f := saved.File
	switch {
	case f == nil:
		// The file did not exist: whatever is there now is new.
		if cur != nil {
			s.cur = cur
		}
	case cur != nil && cur.id == f.id() && sameHead(f.Head, cur.head) && cur.size >= f.Offset:
		cur.off = f.Offset
		s.cur = cur
	case cur != nil && cur.id == f.id():
		// Same inode, shorter or with another first line: truncated
		// (copytruncate) while authwatch was stopped. The lines not yet
		// read went to the copy.
		s.truncations.Add(1)
		s.log.Info("freeradius log: file truncated while stopped; reading it from the start", "path", s.cfg.Path)
		if c := findCopy(s.cfg.Path, cur, *f, nil, 0); c != nil {
			c.off, c.until, c.copy = f.Offset, now, true
			s.olds = append(s.olds, c)
		}
		cur.off = 0
		s.cur = cur
	default:
		// Another file, or none: rotated while stopped. Finish the old
		// one where rotation put it, then read the new one whole.
		if t := findFile(s.cfg.Path, *f, cur); t != nil {
			t.off, t.until = f.Offset, now.Add(rotateGrace)
			s.olds = append(s.olds, t)
			s.log.Info("freeradius log: file rotated while stopped; finishing the old one first", "old", t.name)
		} else {
			s.log.Warn("freeradius log: the file read before the restart is gone; its last lines are lost", "inode", f.Inode, "offset", f.Offset)
		}
		s.rotations.Add(1)
		if cur != nil {
			s.cur = cur
		}
	}
	s.dirty = true
	return true
}

// startAtEnd places a first run's reading: at the end of the file, before the
// last Backfill lines, and before a last line still being written (so that
// it is read whole once complete).
func (s *Source) startAtEnd(t *tracked) {
	off, err := startOffset(t.f, t.size, s.cfg.Backfill)
	if err != nil {
		s.noteErr(fmt.Errorf("find the end of %s: %w", t.name, err))
		off = t.size
	}
	t.off = off
	s.cur = t
	// Saved at once: a restart before the first line must not start at
	// the end again, past the lines written in between.
	s.dirty = true
	s.log.Info("freeradius log: first run; starting at the end", "offset", off, "size", t.size, "backfill", s.cfg.Backfill)
}

// startOffset returns where the last n complete lines of the first size
// bytes of f start (n = 0: after the last complete line).
func startOffset(f io.ReaderAt, size int64, n int) (int64, error) {
	const block = 64 << 10
	buf := make([]byte, block)
	seen := 0 // newlines seen from the end
	limit := int64(0)
	if n == 0 {
		limit = max(0, size-maxLine) // a partial line longer than that is not waited for
	}
	for end := size; end > limit; {
		start := max(limit, end-block)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			seen++
			if seen == n+1 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	if n == 0 && limit > 0 {
		return size, nil
	}
	return 0, nil
}

// findFile looks for a file read before: by its inode (and first line) at
// the path or beside it, where rotation renamed it. not is the file now at
// the path, which is not it.
func findFile(path string, p filePos, not *tracked) *tracked {
	if p.id() == (fileID{}) {
		return nil
	}
	candidates := append([]sibling{{path: path}}, siblings(path)...)
	for _, c := range candidates {
		if c.fi == nil {
			fi, err := os.Stat(c.path)
			if err != nil {
				continue
			}
			c.fi = fi
		}
		if idOf(c.fi) != p.id() || (not != nil && os.SameFile(c.fi, not.fi)) {
			continue
		}
		t, err := openFile(c.path)
		if err != nil || t == nil {
			continue
		}
		if t.id != p.id() || !sameHead(p.Head, t.head) || t.size < p.Offset {
			t.f.Close()
			continue
		}
		return t
	}
	return nil
}

// findCopy looks beside path for the copy copytruncate made of the file
// before truncating it: another file with the same first line, at least off
// bytes long, and — when the last line read is known (lastLen > 0) — with
// that line ending at off.
func findCopy(path string, cur *tracked, p filePos, last *[sha256.Size]byte, lastLen int64) *tracked {
	if p.Head == "" {
		return nil // nothing to recognise it by
	}
	for _, c := range siblings(path) {
		if cur != nil && os.SameFile(c.fi, cur.fi) {
			continue
		}
		if c.fi.Size() < p.Offset {
			continue
		}
		t, err := openFile(c.path)
		if err != nil || t == nil {
			continue
		}
		if t.head != p.Head || (last != nil && lastLen > 0 && !endsWith(t.f, p.Offset, lastLen, *last)) {
			t.f.Close()
			continue
		}
		return t
	}
	return nil
}

// endsWith reports whether the n bytes of f before off hash to sum.
func endsWith(f io.ReaderAt, off, n int64, sum [sha256.Size]byte) bool {
	if n > off || n > maxLine {
		return false
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off-n); err != nil {
		return false
	}
	return sha256.Sum256(b) == sum
}

// step does one round: checks that the path still names the file being read
// (rotation, truncation, a file that appeared), reads what rotated files
// still have, then the new lines of the file. It stops at the first error,
// so lines are recorded in the order they were written.
func (s *Source) step(ctx context.Context) error {
	defer s.setFileStatus()
	now := s.now()
	pathErr := s.checkPath(now)
	// Rotated files first: their lines are older than the new file's.
	keep := s.olds[:0]
	for i, t := range s.olds {
		off := t.off
		if err := s.drain(ctx, t); err != nil {
			s.olds = append(keep, s.olds[i:]...)
			return err
		}
		if t.off != off && !t.copy {
			t.until = now.Add(rotateGrace)
		}
		if now.Before(t.until) {
			keep = append(keep, t)
			continue
		}
		t.f.Close()
		s.dirty = true
	}
	clear(s.olds[len(keep):])
	s.olds = keep
	if s.cur != nil {
		if err := s.drain(ctx, s.cur); err != nil {
			return err
		}
	}
	return pathErr
}

// checkPath notices what happened to the path since the last step: the file
// renamed or removed (it joins the rotated files, still read for a while),
// truncated, or (re)created.
func (s *Source) checkPath(now time.Time) error {
	if s.cur != nil {
		fi, err := os.Stat(s.cfg.Path)
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("stat %s: %w", s.cfg.Path, err)
		case err != nil || !os.SameFile(fi, s.cur.fi):
			// FreeRADIUS may still write to it for a moment, until
			// it reopens its log.
			s.rotations.Add(1)
			s.log.Info("freeradius log: file rotated", "path", s.cfg.Path, "offset", s.cur.off)
			s.cur.until = now.Add(rotateGrace)
			s.olds = append(s.olds, s.cur)
			s.cur = nil
			s.dirty = true
		default:
			s.cur.size = fi.Size()
			// A first line that changed means truncated and written
			// again past the old offset before this look.
			if h := headOf(s.cur.f); fi.Size() < s.cur.off || (s.cur.head != "" && h != "" && h != s.cur.head) {
				s.truncated(now)
			}
		}
	}
	if s.cur != nil {
		return nil
	}
	t, err := openFile(s.cfg.Path)
	if err != nil || t == nil {
		return err
	}
	if s.firstRun {
		// Not readable when the first run began: the file has a past
		// that a first run does not read.
		s.startAtEnd(t)
	} else {
		// Created (again) since: all of it is new.
		s.cur = t
		s.dirty = true
		s.log.Info("freeradius log: new file; reading it from the start", "path", s.cfg.Path)
	}
	s.firstRun = false
	return nil
}

// truncated handles copytruncate: the file was copied, then cut to zero
// length. The lines written between the last read and the copy are only in
// the copy, so it joins the rotated files, read (once) before the file is
// read again from its start.
func (s *Source) truncated(now time.Time) {
	t := s.cur
	s.truncations.Add(1)
	s.log.Info("freeradius log: file truncated (copytruncate); reading it from the start", "path", s.cfg.Path, "offset", t.off)
	if c := findCopy(s.cfg.Path, t, t.pos(), &t.last, t.lastLen); c != nil {
		c.off, c.until, c.copy = t.off, now, true
		s.olds = append(s.olds, c)
		s.log.Info("freeradius log: reading the lines not yet read from the copy", "copy", c.name)
	}
	t.off, t.head, t.lastLen, t.skip = 0, headOf(t.f), 0, false
	s.dirty = true
}

// drain reads t from its offset to its end, a chunk at a time; the complete
// lines of a chunk become one commit, after which the offset moves past them
// and, when there were events, the position is saved. A last line without
// its newline is left for later.
func (s *Source) drain(ctx context.Context, t *tracked) error {
	for ctx.Err() == nil {
		n, err := t.f.ReadAt(s.buf, t.off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		if n == 0 {
			return nil
		}
		t.size = max(t.size, t.off+int64(n))
		data := s.buf[:n]
		end := bytes.LastIndexByte(data, '\n')
		if end < 0 {
			if n < len(s.buf) {
				return nil // a line still being written
			}
			// A chunk without a newline is no FreeRADIUS line: drop it
			// up to its end.
			if !t.skip {
				s.unknown.Add(1)
			}
			t.off += int64(n)
			t.skip = true
			s.dirty = true
			continue
		}
		if err := s.process(ctx, t, data[:end+1]); err != nil {
			return err
		}
		if n < len(s.buf) {
			return nil
		}
	}
	return ctx.Err()
}

// process parses the complete lines in data (read at t.off), commits their
// events, and then moves t past them. On error nothing moves, so the lines
// are read again on the next try.
func (s *Source) process(ctx context.Context, t *tracked, data []byte) error {
	var evs []watcher.Event
	var lines, unknown, ignored, merged int64
	merge := s.merge // restored on failure, so a retry merges the same way
	skip := t.skip
	now := s.now()
	rest := data
	var last []byte
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i]
		last = rest[:i+1]
		rest = rest[i+1:]
		lines++
		if skip {
			// The tail of an over-long line, already counted.
			skip = false
			continue
		}
		if len(line) > maxLine {
			unknown++
			continue
		}
		a, class := parseLine(string(line), s.loc, now)
		switch class {
		case classOther:
			ignored++
			continue
		case classUnknown:
			unknown++
			continue
		}
		if merge.duplicate(a) {
			merged++
			continue
		}
		ev := a.event(s.cfg, s.source)
		if ev.Validate() != nil {
			// Never hand the recorder an event it refuses: Commit
			// would store the others and the retry would repeat them.
			unknown++
			continue
		}
		evs = append(evs, ev)
	}
	if len(evs) > 0 {
		if _, err := s.rec.Commit(ctx, evs...); err != nil {
			return fmt.Errorf("record %d events: %w", len(evs), err)
		}
	}
	s.merge = merge
	if t.off == 0 && t.head == "" {
		first, _, _ := bytes.Cut(data, []byte{'\n'})
		t.head = lineStamp(string(bytes.TrimLeft(first, "\x00")))
	}
	t.off += int64(len(data))
	t.skip = skip
	t.last, t.lastLen = sha256.Sum256(last), int64(len(last))
	s.lines.Add(lines)
	s.unknown.Add(unknown)
	s.ignored.Add(ignored)
	s.merged.Add(merged)
	s.events.Add(int64(len(evs)))
	s.mu.Lock()
	s.st.LastLine = now
	s.mu.Unlock()
	s.dirty = true
	if len(evs) > 0 {
		// The events are stored: the position must say so before
		// anything else happens, or a restart would record them again.
		if err := s.savePosition(ctx); err != nil {
			return err
		}
	}
	return nil
}
