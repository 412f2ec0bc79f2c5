package routeros

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3/proto"

	"authwatch/watcher/routeros/routerostest"
)

// byteConn is a net.Conn reading from a buffer, chunk bytes per Read.
type byteConn struct {
	net.Conn
	r     *bytes.Reader
	chunk int
}

func (c *byteConn) Read(p []byte) (int, error) {
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}

func TestFrameGuard(t *testing.T) {
	valid := bytes.Join([][]byte{
		routerostest.EncodeSentence("!re", "=name=joao", ".tag=l1"),
		routerostest.EncodeSentence("!re", "=message="+strings.Repeat("m", 0x4321)), // 3-byte length
		routerostest.EncodeSentence("!re", "=message="+strings.Repeat("m", maxWord-20)),
		routerostest.EncodeSentence("!done"),
	}, nil)
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" for a clean EOF
	}{
		{"valid", valid, ""},
		{"control byte", []byte{0xF8}, "control byte 0xf8"},
		{"huge 5-byte length", []byte{0xF0, 0xFF, 0xFF, 0xFF, 0xFF}, "word of 4294967295 bytes"},
		{"4-byte length over the limit", []byte{0xE0, 0x20, 0x00, 0x00}, "word of 2097152 bytes"},
		{"sentence over the limit", bytes.Repeat(append([]byte{0xE0, 0x0F, 0xFF, 0xFF}, make([]byte, 0xFFFFF)...), 5), "sentence over"},
	} {
		for _, chunk := range []int{0, 1, 3} {
			g := &frameGuard{Conn: &byteConn{r: bytes.NewReader(tc.in), chunk: chunk}}
			var bad error
			g.onBad = func(err error) { bad = err }
			_, err := io.Copy(io.Discard, g)
			switch {
			case tc.want == "" && (err != nil || bad != nil):
				t.Errorf("%s (chunk %d): %v", tc.name, chunk, err)
			case tc.want != "" && (!errors.Is(err, ErrFraming) || !strings.Contains(err.Error(), tc.want) || bad == nil):
				t.Errorf("%s (chunk %d): err = %v, want %q", tc.name, chunk, err, tc.want)
			}
		}
	}
}

// FuzzReplyPath feeds arbitrary bytes through the path a router's reply
// takes in authwatch: frameGuard, go-routeros' sentence reader, and the
// source's item and log-line parsers. Nothing may panic, and no word over
// the guard's limit may get through.
func FuzzReplyPath(f *testing.F) {
	f.Add(routerostest.EncodeSentence("!re", "=.id=*1", "=name=joao", "=address=0.0.0.0", "=uptime=1d00:00:01", ".tag=l1"))
	f.Add(routerostest.EncodeSentence("!re", "=.id=*1", "=.dead=yes"))
	f.Add(routerostest.EncodeSentence("!re", "=topics=pppoe,ppp,error", "=message=<0010>: user joao authentication failed"))
	f.Add(routerostest.EncodeSentence("!trap", "=category=2", "=message=interrupted"))
	f.Add([]byte{0xF0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x81, 0x00, '!'})
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &frameGuard{Conn: &byteConn{r: bytes.NewReader(data)}}
		r := proto.NewReader(g)
		defer r.Close()
		for range 64 {
			sen, err := r.ReadSentence()
			if err != nil {
				return
			}
			for k, v := range sen.Map {
				if len(k)+len(v) > maxWord {
					t.Fatalf("word of %d bytes passed the guard", len(k)+len(v))
				}
			}
			if rw, err := parseRow(sen.Map); err == nil && checkLogin(rw.name) != nil {
				t.Fatalf("row with bad login %q", rw.name)
			}
			parseLogLine(sen.Map["message"])
			keepTopics(sen.Map["topics"])
			parseUptime(sen.Map["uptime"])
		}
	})
}

// The deadline methods are needed by nothing here but keep byteConn a
// complete net.Conn should a test hand it further.
func (c *byteConn) SetDeadline(time.Time) error { return nil }
