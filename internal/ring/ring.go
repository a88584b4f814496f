// Package ring is a fixed-size ring buffer that keeps the newest values, for
// the in-memory poll and job records of a dispatcher.
package ring

import "sync"

// Buffer keeps the last Cap values pushed. It is safe for concurrent use.
// The zero value is not usable; call [New].
type Buffer[T any] struct {
	mu     sync.Mutex
	items  []T
	pushed uint64 // values pushed so far; the next goes to pushed % len(items)
}

// New returns a buffer that keeps the last n values (at least 1).
func New[T any](n int) *Buffer[T] {
	if n < 1 {
		n = 1
	}
	return &Buffer[T]{items: make([]T, n)}
}

// Push adds v, dropping the oldest value when the buffer is full, and
// returns v's sequence number (0 for the first value pushed), for
// [Buffer.UpdateAt].
func (b *Buffer[T]) Push(v T) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq := b.pushed
	b.items[seq%uint64(len(b.items))] = v
	b.pushed++
	return seq
}

// UpdateAt calls f on the value Push numbered seq and reports whether that
// value is still kept (later pushes drop it once the buffer is full). f
// runs under the buffer's lock.
func (b *Buffer[T]) UpdateAt(seq uint64, f func(*T)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq >= b.pushed || b.pushed-seq > uint64(len(b.items)) {
		return false
	}
	f(&b.items[seq%uint64(len(b.items))])
	return true
}

// Newest returns up to n values, newest first (all of them when n <= 0).
func (b *Buffer[T]) Newest(n int) []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.lenLocked()
	if n <= 0 || n > l {
		n = l
	}
	out := make([]T, n)
	for i := range n {
		out[i] = b.items[(b.pushed-1-uint64(i))%uint64(len(b.items))]
	}
	return out
}

// Len returns how many values the buffer holds.
func (b *Buffer[T]) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lenLocked()
}

func (b *Buffer[T]) lenLocked() int {
	return int(min(b.pushed, uint64(len(b.items))))
}
