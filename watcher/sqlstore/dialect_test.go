package sqlstore

import "testing"

func TestUTF8Successor(t *testing.T) {
	tests := []struct {
		prefix, want string
		ok           bool
	}{
		{"jo", "jp", true},
		{"jo\u00e3", "jo\u00e4", true},
		{"a\U0010FFFF", "b", true},
		{"a\uD7FF", "a\uE000", true},
		{"\U0010FFFF", "", false},
		{"", "", false},
		{"x\xff", "y", true}, // an invalid byte is dropped
	}
	for _, tt := range tests {
		got, ok := utf8Successor(tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("utf8Successor(%q) = %q, %v; want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
		}
	}
}
