package frlog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/frlog"
)

// TestFollowAppend: a first run starts at the end; appended lines are
// recorded as they come; a line without its newline waits for it.
func TestFollowAppend(t *testing.T) {
	_, path, db := newDir(t)
	appendTo(t, path, lines(1, 3))
	h := start(t, path, db, options{})
	appendTo(t, path, lines(4, 8))
	sameLogins(t, h.waitLogins(5), users(4, 8))

	l9 := line(9)
	appendTo(t, path, l9[:40])
	time.Sleep(1500 * time.Millisecond) // past a poll
	if got := h.logins(); len(got) != 5 {
		t.Fatalf("a partial line was recorded: %v", got)
	}
	appendTo(t, path, l9[40:])
	sameLogins(t, h.waitLogins(6), users(4, 9))

	st := h.src.Status()
	if !st.Open || !st.Notify || st.Lines != 6 || st.Events != 6 || st.Unknown != 0 || st.Offset != int64(len(lines(1, 9))) || st.Inode == 0 {
		t.Errorf("status %+v", st)
	}
}

// TestBackfill: a first run reads the last Backfill complete lines, and a
// last line still being written is read whole once complete.
func TestBackfill(t *testing.T) {
	_, path, db := newDir(t)
	l11 := line(11)
	appendTo(t, path, lines(1, 10)+l11[:30])
	h := start(t, path, db, options{manual: true, cfg: func(c *frlog.Config) { c.Backfill = 3 }})
	sameLogins(t, h.logins(), users(8, 10))
	appendTo(t, path, l11[30:])
	h.step()
	sameLogins(t, h.logins(), users(8, 11))
}

// TestRotationByRename: the file is renamed and a new one created while
// FreeRADIUS still writes to the old one for a moment; no line is lost or
// read twice, with file notifications and with polling alone.
func TestRotationByRename(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"fsnotify", options{}},
		{"polling", options{poll: 30 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, path, db := newDir(t)
			appendTo(t, path, "")
			h := start(t, path, db, tc.o)
			old, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			for i := 1; i <= 30; i++ {
				old.WriteString(line(i))
			}
			time.Sleep(20 * time.Millisecond)
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			// FreeRADIUS has not reopened yet: these go to the old file.
			for i := 31; i <= 40; i++ {
				old.WriteString(line(i))
			}
			appendTo(t, path, lines(41, 60))
			time.Sleep(50 * time.Millisecond)
			old.WriteString(line(61)) // a straggler, well within the grace period
			appendTo(t, path, lines(62, 70))
			got := h.waitLogins(70)
			// The straggler comes after some of the new file's lines:
			// what matters is that every line is there once.
			if len(got) != 70 {
				t.Fatalf("got %d events", len(got))
			}
			sorted := append([]string(nil), got...)
			sortStrings(sorted)
			sameLogins(t, sorted, users(1, 70))
			if st := h.src.Status(); st.Rotations != 1 {
				t.Errorf("rotations %d", st.Rotations)
			}
		})
	}
}

// TestCopyTruncate: logrotate's copytruncate (Debian's default for
// radius.log). The lines written after the last read but before the copy
// are taken from the copy; the file is then read from its start — also when
// it has grown past the old offset before it is looked at again.
func TestCopyTruncate(t *testing.T) {
	_, path, db := newDir(t)
	appendTo(t, path, "")
	h := start(t, path, db, options{manual: true})
	appendTo(t, path, lines(1, 10))
	h.step()
	sameLogins(t, h.logins(), users(1, 10))

	appendTo(t, path, lines(11, 15)) // not read yet
	copyTruncate(t, path, path+".1")
	appendTo(t, path, lines(16, 20))
	h.step()
	sameLogins(t, h.logins(), users(1, 20))

	// Truncated and regrown past the offset before the next look: the
	// first line's timestamp tells.
	appendTo(t, path, lines(21, 22))
	if err := os.Rename(path+".1", path+".2"); err != nil {
		t.Fatal(err)
	}
	copyTruncate(t, path, path+".1")
	appendTo(t, path, lines(23, 60))
	h.step()
	sameLogins(t, h.logins(), users(1, 60))
	if st := h.src.Status(); st.Truncations != 2 || st.Rotations != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestAbsentThenCreated: the file (and its directory) may not exist yet;
// once created, all of it is read, since all of it is new.
func TestAbsentThenCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "freeradius")
	path, db := filepath.Join(dir, "radius.log"), filepath.Join(t.TempDir(), "a.db")
	h := start(t, path, db, options{poll: 30 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	if st := h.src.Status(); st.Open {
		t.Fatalf("open without a file: %+v", st)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, lines(1, 5))
	sameLogins(t, h.waitLogins(5), users(1, 5))

	// Removed, then back.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	appendTo(t, path, lines(6, 8))
	sameLogins(t, h.waitLogins(8), users(1, 8))
}

// TestAbsentWithNotifications: the same with fsnotify, the directory
// existing: the file's creation wakes the reader.
func TestAbsentWithNotifications(t *testing.T) {
	_, path, db := newDir(t)
	h := start(t, path, db, options{})
	appendTo(t, path, lines(1, 3))
	sameLogins(t, h.waitLogins(3), users(1, 3))
}

// TestRestartResumes: stopped and started again (same store), the source
// records exactly the lines written meanwhile — also when the file was
// rotated by rename, or copied and truncated, while it was stopped.
func TestRestartResumes(t *testing.T) {
	_, path, db := newDir(t)
	appendTo(t, path, lines(1, 5))
	h := start(t, path, db, options{manual: true})
	appendTo(t, path, lines(6, 15))
	h.step()
	sameLogins(t, h.logins(), users(6, 15))
	appendTo(t, path, lines(16, 17)+line(18)[:20]) // a partial line at the stop
	h.step()
	h.stop()

	appendTo(t, path, line(18)[20:]+lines(19, 25))
	h = start(t, path, db, options{manual: true})
	sameLogins(t, h.logins(), users(6, 25))
	h.stop()

	// Rotated by rename while stopped: the rest of the old file first.
	appendTo(t, path, lines(26, 30))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, lines(31, 35))
	h = start(t, path, db, options{manual: true})
	sameLogins(t, h.logins(), users(6, 35))
	h.stop()

	// Copied and truncated while stopped: the copy is found beside it.
	appendTo(t, path, lines(36, 38))
	if err := os.Rename(path+".1", path+".2"); err != nil {
		t.Fatal(err)
	}
	copyTruncate(t, path, path+".1")
	appendTo(t, path, lines(39, 40))
	h = start(t, path, db, options{manual: true})
	sameLogins(t, h.logins(), users(6, 40))

	// The position is in the store's table, under the source's name.
	pos, err := h.store.LoadPosition(context.Background(), "freeradius:radius-1")
	if err != nil || !strings.Contains(string(pos), `"offset"`) {
		t.Fatalf("position %s, %v", pos, err)
	}
	if strings.Contains(string(pos), "user-") || strings.Contains(string(pos), "pw-") {
		t.Fatalf("the position holds line text: %s", pos)
	}
}

// TestFirstRunAbsentThenRestart: a first run with no file saves that
// fact, so a restart reads the file that appeared meanwhile from its start
// instead of jumping to its end.
func TestFirstRunAbsentThenRestart(t *testing.T) {
	_, path, db := newDir(t)
	h := start(t, path, db, options{manual: true})
	h.stop()
	appendTo(t, path, lines(1, 4))
	h = start(t, path, db, options{manual: true})
	sameLogins(t, h.logins(), users(1, 4))
}

// flakyRecorder fails the first commits, like a store that is down.
type flakyRecorder struct {
	next  frlog.Recorder
	fails atomic.Int32
}

func (f *flakyRecorder) Commit(ctx context.Context, evs ...watcher.Event) ([]watcher.Event, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("database is locked")
	}
	return f.next.Commit(ctx, evs...)
}

// TestStoreDown: while commits fail, the position does not move; once they
// succeed, every line is recorded once.
func TestStoreDown(t *testing.T) {
	_, path, db := newDir(t)
	appendTo(t, path, "")
	flaky := &flakyRecorder{}
	h := start(t, path, db, options{manual: true, rec: func(r frlog.Recorder) frlog.Recorder { flaky.next = r; return flaky }})
	flaky.fails.Store(2)
	appendTo(t, path, lines(1, 3))
	h.step()
	h.step()
	if got := h.logins(); len(got) != 0 {
		t.Fatalf("recorded while failing: %v", got)
	}
	st := h.src.Status()
	if st.Offset != 0 || !strings.Contains(st.LastError, "database is locked") {
		t.Fatalf("status %+v", st)
	}
	h.step()
	sameLogins(t, h.logins(), users(1, 3))
	if st := h.src.Status(); st.Lines != 3 || st.Events != 3 {
		t.Errorf("counted more than once: %+v", st)
	}
}

// TestOverlongAndUnknownLines: lines of unknown shape, and a line far
// longer than any FreeRADIUS writes, are skipped and counted — never logged,
// since they may hold a password.
func TestOverlongAndUnknownLines(t *testing.T) {
	_, path, db := newDir(t)
	appendTo(t, path, "")
	h := start(t, path, db, options{manual: true})
	huge := strings.Repeat("x", 300<<10) + "hunter2\n"
	appendTo(t, path, line(1)+huge+
		"Wed Nov 25 10:00:59 2026 : Auth: (5) pap: Comparing with password hunter2\n"+
		"(5) User-Password = \"hunter2\"\n"+
		"Wed Nov 25 10:00:59 2026 : Info: Ready to process requests\n"+
		line(2))
	h.step()
	sameLogins(t, h.logins(), users(1, 2))
	st := h.src.Status()
	if st.Unknown != 3 || st.Ignored != 1 || st.Events != 2 {
		t.Errorf("status %+v", st)
	}
	h.stop()
	if strings.Contains(h.logs.String(), "hunter2") {
		t.Errorf("an unknown line's text was logged:\n%s", h.logs)
	}
}

// TestCapturedLog reads a radius.log written by a real FreeRADIUS 3.2.1
// (auth_badpass and auth_goodpass on): the second line 3.2 writes for an
// Invalid user or a Multiple logins reject is merged into the first, and no
// password reaches the store.
func TestCapturedLog(t *testing.T) {
	_, path, db := newDir(t)
	b, err := os.ReadFile("testdata/freeradius-3.2.1.log")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	h := start(t, path, db, options{manual: true, cfg: func(c *frlog.Config) { c.Backfill = 1000 }})
	type row struct {
		kind   watcher.Kind
		login  string
		reason string
		mac    string
	}
	var got []row
	for _, ev := range h.events() {
		got = append(got, row{ev.Kind, ev.Login, ev.Reason, ev.MAC})
	}
	want := []row{
		{watcher.AuthAccept, "maria", "", "18:FD:74:22:23:B7"},
		{watcher.AuthReject, "maria", frlog.ReasonWrongPassword, "18:FD:74:22:23:B7"},
		{watcher.AuthReject, "joao", frlog.ReasonMultipleLogins, "AA:BB:CC:DD:EE:FF"},
		{watcher.AuthReject, "nobody", frlog.ReasonUnknownUser, "52:54:00:AA:00:03"},
		{watcher.AuthReject, "invalid", frlog.ReasonUnknownUser, ""},
		{watcher.AuthReject, "blocked", frlog.ReasonRejected, ""},
		{watcher.AuthReject, "maria", frlog.ReasonWrongPassword, ""},
		{watcher.AuthReject, "maria", frlog.ReasonNoPassword, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if st := h.src.Status(); st.Merged != 2 || st.Ignored != 7 || st.Unknown != 0 {
		t.Errorf("status %+v", st)
	}
	h.stop()
	assertNoSecrets(t, h, "Maria#2026", "maria2025", "s3nha/secreta", "nobody123")
}

// assertNoSecrets fails when a password is in the SQLite files (database,
// WAL) or the source's log.
func assertNoSecrets(t *testing.T, h *harness, secrets ...string) {
	t.Helper()
	files, _ := filepath.Glob(h.db + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("password %q found in %s", s, filepath.Base(f))
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("password %q found in the log output", s)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestRestoreWaitsForReadableFile: with a saved position, a path that cannot
// be opened (here a directory in its place) is waited for rather than
// guessed about: once the file is back, reading resumes at its offset.
func TestRestoreWaitsForReadableFile(t *testing.T) {
	_, path, db := newDir(t)
	appendTo(t, path, lines(1, 3))
	h := start(t, path, db, options{manual: true})
	appendTo(t, path, lines(4, 6))
	h.step()
	sameLogins(t, h.logins(), users(4, 6))
	h.stop()

	if err := os.Rename(path, path+".keep"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	h = start(t, path, db, options{manual: true})
	if st := h.src.Status(); st.Open || !strings.Contains(st.LastError, "not a regular file") {
		t.Fatalf("status %+v", st)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".keep", path); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, lines(7, 8))
	h.step()
	sameLogins(t, h.logins(), users(4, 8))
}
