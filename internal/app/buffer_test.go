package app_test

import (
	"bytes"
	"strings"
	"sync"
)

// syncBuffer is a bytes.Buffer safe to write from the demo while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// after returns what follows the first occurrence of marker, or "".
func (s *syncBuffer) after(marker string) string {
	str := s.String()
	if i := strings.Index(str, marker); i >= 0 {
		return str[i+len(marker):]
	}
	return ""
}
