package routeros

import (
	"errors"
	"fmt"
	"net"
)

// Limits on what a router may send. RouterOS replies are small (a log line,
// one /ppp/active row); anything near these is a broken or hostile peer.
const (
	maxWord     = 1 << 20 // bytes in one word
	maxSentence = 4 << 20 // bytes in one sentence
)

// ErrFraming is wrapped by the error that ends a connection whose byte
// stream is not valid RouterOS API framing (a control byte where a length
// should be, a word or sentence over the limits).
var ErrFraming = errors.New("malformed RouterOS API framing")

// frameGuard sits between the socket and go-routeros' reader and checks the
// framing as the bytes pass. go-routeros v3.0.1 allocates whatever length a
// word claims (up to 4 GiB), so one corrupt length prefix — garbage on the
// port, a proxy, a hostile peer — would take the whole process down with it.
// The guard follows the same length encoding, and on the first violation
// fails every later Read, which ends the connection cleanly instead.
type frameGuard struct {
	net.Conn
	onBad func(error) // called once, on the violation

	need     int   // length-prefix bytes still to come
	length   int64 // the length being assembled
	skip     int64 // word content bytes still to come
	sentence int64 // bytes in the sentence so far
	err      error
}

func (g *frameGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if verr := g.check(p[:n]); verr != nil {
		g.err = verr
		if g.onBad != nil {
			g.onBad(verr)
		}
		// Hand over nothing of the bad chunk: the reader must not act on
		// a half-checked word.
		return 0, verr
	}
	return n, err
}

// check advances the framing state over b.
func (g *frameGuard) check(b []byte) error {
	for i := 0; i < len(b); {
		if g.skip > 0 {
			k := min(int64(len(b)-i), g.skip)
			i += int(k)
			g.skip -= k
			continue
		}
		c := b[i]
		i++
		if g.need > 0 {
			g.length = g.length<<8 | int64(c)
			g.need--
			if g.need == 0 {
				if err := g.word(g.length); err != nil {
					return err
				}
			}
			continue
		}
		switch {
		case c&0x80 == 0:
			if err := g.word(int64(c)); err != nil {
				return err
			}
		case c&0xC0 == 0x80:
			g.length, g.need = int64(c&0x3F), 1
		case c&0xE0 == 0xC0:
			g.length, g.need = int64(c&0x1F), 2
		case c&0xF0 == 0xE0:
			g.length, g.need = int64(c&0x0F), 3
		case c&0xF8 == 0xF0:
			// go-routeros ignores the low bits of a 5-byte prefix; so do we.
			g.length, g.need = 0, 4
		default:
			return fmt.Errorf("%w: control byte 0x%02x where a word length was expected", ErrFraming, c)
		}
	}
	return nil
}

// word accounts for a word of n bytes whose prefix just ended.
func (g *frameGuard) word(n int64) error {
	if n == 0 {
		g.sentence = 0 // end of sentence
		return nil
	}
	if n > maxWord {
		return fmt.Errorf("%w: word of %d bytes (limit %d)", ErrFraming, n, maxWord)
	}
	g.sentence += n
	if g.sentence > maxSentence {
		return fmt.Errorf("%w: sentence over %d bytes", ErrFraming, maxSentence)
	}
	g.skip = n
	return nil
}
