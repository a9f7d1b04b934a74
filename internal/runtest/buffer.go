package runtest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for a writer goroutine and a reader at
// once: what a test hands a logger or a program's output, and polls.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
