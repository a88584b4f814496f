// Package ring is a fixed-size ring buffer that keeps the newest values, for
// the in-memory poll and job records of a dispatcher.
package ring

import "sync"

// Buffer keeps the last Cap values pushed. It is safe for concurrent use.
// The zero value is not usable; call [New].
type Buffer[T any] struct {
	mu    sync.Mutex
	items []T
	next  int // index of the next write
	full  bool
}

// New returns a buffer that keeps the last n values (at least 1).
func New[T any](n int) *Buffer[T] {
	if n < 1 {
		n = 1
	}
	return &Buffer[T]{items: make([]T, n)}
}

// Push adds v, dropping the oldest value when the buffer is full.
func (b *Buffer[T]) Push(v T) {
	b.mu.Lock()
	b.items[b.next] = v
	b.next++
	if b.next == len(b.items) {
		b.next = 0
		b.full = true
	}
	b.mu.Unlock()
}

// Update calls f on the newest value for which match returns true, newest
// first, and reports whether one was found. f runs under the buffer's lock.
func (b *Buffer[T]) Update(match func(*T) bool, f func(*T)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.lenLocked()
	for i := 0; i < n; i++ {
		j := (b.next - 1 - i + len(b.items)) % len(b.items)
		if match(&b.items[j]) {
			f(&b.items[j])
			return true
		}
	}
	return false
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
		out[i] = b.items[(b.next-1-i+len(b.items))%len(b.items)]
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
	if b.full {
		return len(b.items)
	}
	return b.next
}
