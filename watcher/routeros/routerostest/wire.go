package routerostest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The RouterOS API frames every word with its length in a variable-width
// prefix (1 to 5 bytes, the high bits of the first byte say how many); a
// sentence is a run of words ended by an empty word. This codec is written
// independently of go-routeros' proto package on purpose: the fake and the
// client then check each other's framing instead of sharing one bug.

// EncodeLength returns the RouterOS API length prefix of a word of n bytes.
func EncodeLength(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x4000:
		return []byte{byte(n>>8) | 0x80, byte(n)}
	case n < 0x200000:
		return []byte{byte(n>>16) | 0xC0, byte(n >> 8), byte(n)}
	case n < 0x10000000:
		return []byte{byte(n>>24) | 0xE0, byte(n >> 16), byte(n >> 8), byte(n)}
	default:
		return []byte{0xF0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

// EncodeSentence frames words as one sentence, terminator included. Tests
// use it to build replies for InjectRaw.
func EncodeSentence(words ...string) []byte {
	size := 1
	for _, w := range words {
		size += len(w) + 5
	}
	b := make([]byte, 0, size)
	for _, w := range words {
		b = append(b, EncodeLength(len(w))...)
		b = append(b, w...)
	}
	return append(b, 0)
}

var errWordTooLong = errors.New("word too long")

// wordReader reads sentences from a client, refusing words longer than max
// so that a broken client cannot make the fake allocate gigabytes.
type wordReader struct {
	r   *bufio.Reader
	max int
}

func (r *wordReader) readLength() (int, error) {
	c, err := r.r.ReadByte()
	if err != nil {
		return 0, err
	}
	var extra int
	var n int
	switch {
	case c&0x80 == 0:
		return int(c), nil
	case c&0xC0 == 0x80:
		n, extra = int(c&0x3F), 1
	case c&0xE0 == 0xC0:
		n, extra = int(c&0x1F), 2
	case c&0xF0 == 0xE0:
		n, extra = int(c&0x0F), 3
	case c&0xF8 == 0xF0:
		n, extra = 0, 4
	default:
		return 0, fmt.Errorf("control byte 0x%02x where a word length was expected", c)
	}
	for range extra {
		b, err := r.r.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		n = n<<8 | int(b)
	}
	return n, nil
}

func (r *wordReader) readWord() (string, error) {
	n, err := r.readLength()
	if err != nil {
		return "", err
	}
	if n > r.max {
		return "", fmt.Errorf("%w: %d bytes", errWordTooLong, n)
	}
	if n == 0 {
		return "", nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return "", noEOF(err)
	}
	return string(b), nil
}

// readSentence returns the next sentence's words; empty sentences (a lone
// terminator) are skipped, as RouterOS does.
func (r *wordReader) readSentence() ([]string, error) {
	var words []string
	for {
		w, err := r.readWord()
		if err != nil {
			if len(words) > 0 {
				err = noEOF(err)
			}
			return nil, err
		}
		if w == "" {
			if len(words) == 0 {
				continue
			}
			return words, nil
		}
		words = append(words, w)
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// request is one command sentence from a client, split into its parts.
type request struct {
	command string            // "/ppp/active/print"
	attrs   map[string]string // =key=value
	order   []string          // attribute keys in the order sent
	queries []string          // ?... words
	tag     string            // .tag=…, "" when untagged
	hasTag  bool
}

func parseRequest(words []string) request {
	rq := request{command: words[0], attrs: map[string]string{}}
	for _, w := range words[1:] {
		switch {
		case strings.HasPrefix(w, ".tag="):
			rq.tag, rq.hasTag = w[len(".tag="):], true
		case strings.HasPrefix(w, "="):
			k, v, _ := strings.Cut(w[1:], "=")
			if _, dup := rq.attrs[k]; !dup {
				rq.order = append(rq.order, k)
			}
			rq.attrs[k] = v
		case strings.HasPrefix(w, "?"):
			rq.queries = append(rq.queries, w[1:])
		default:
			// RouterOS API attributes must start with '='; a bare word is
			// an error the router answers with a trap. Keep it visible.
			rq.attrs["\x00bad"] = w
		}
	}
	return rq
}
