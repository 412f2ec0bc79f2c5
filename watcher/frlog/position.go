package frlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// fileID names a file by device and inode.
type fileID struct{ dev, ino uint64 }

// filePos is where reading one file got to: the file (device, inode and the
// timestamp its first line starts with) and the offset of the first line not
// yet recorded.
type filePos struct {
	Dev    uint64 `json:"dev,omitempty"`
	Inode  uint64 `json:"inode,omitempty"`
	Offset int64  `json:"offset"`
	// Head is the timestamp of the file's first line (only the timestamp:
	// the position is stored, and nothing a customer sent may be). It tells
	// a file rewritten in place, or a recycled inode, from the one read.
	Head string `json:"head,omitempty"`
}

func (p filePos) id() fileID { return fileID{dev: p.Dev, ino: p.Inode} }

// position is what is saved in the PositionStore, as JSON.
type position struct {
	V    int    `json:"v"`
	Path string `json:"path"`
	// File is the file at Path; nil when there was none.
	File *filePos `json:"file,omitempty"`
	// Old are files rotated away that were still being read.
	Old []filePos `json:"old,omitempty"`
}

const positionVersion = 1

func decodePosition(b []byte) (*position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode saved position: %w", err)
	}
	if p.V != positionVersion {
		return nil, fmt.Errorf("saved position has version %d, want %d", p.V, positionVersion)
	}
	return &p, nil
}

// headOf reads the timestamp a file's first line starts with ("" when the
// file is empty or does not start with one).
func headOf(f io.ReaderAt) string {
	var b [64]byte
	n, _ := f.ReadAt(b[:], 0)
	line, _, _ := bytes.Cut(b[:n], []byte{'\n'})
	return lineStamp(string(bytes.TrimLeft(line, "\x00")))
}

// sameHead reports whether two first-line timestamps may name one file: they
// are equal, or one of them is unknown.
func sameHead(a, b string) bool { return a == "" || b == "" || a == b }

// compressed names the suffixes of rotated files that cannot be read as
// text: logrotate's compress option.
var compressed = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".zip"}

// maxSiblings bounds how many rotated files are looked at.
const maxSiblings = 64

// sibling is a file beside the log whose name starts with the log's name
// (radius.log.1, radius.log-20261125): where rotation leaves the old file.
type sibling struct {
	path string
	fi   os.FileInfo
}

// siblings lists the uncompressed rotated files beside path.
func siblings(path string) []sibling {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return nil
	}
	var out []sibling
	for _, e := range entries {
		name := e.Name()
		if name == base || !strings.HasPrefix(name, base) || e.IsDir() {
			continue
		}
		if isCompressed(name) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, sibling{path: p, fi: fi})
		if len(out) == maxSiblings {
			break
		}
	}
	return out
}

func isCompressed(name string) bool {
	for _, s := range compressed {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
