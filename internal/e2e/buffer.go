package e2e

import (
	"strings"
	"sync"
)

// Buffer is an output buffer safe for a writing process and reading tests.
// With a Limit it keeps only recent output. The zero value is ready to use.
type Buffer struct {
	// Limit caps the bytes kept: past it, the buffer keeps only its last
	// Limit/2 bytes. 0: unlimited.
	Limit int

	mu  sync.Mutex
	buf []byte
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.Limit > 0 && len(b.buf) > b.Limit {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.Limit/2:]...)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Tail returns at most the last n bytes, marked with a leading "…" when
// cut.
func (b *Buffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// TailLines returns the last n lines of s.
func TailLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
