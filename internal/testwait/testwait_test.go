package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	var n atomic.Int32
	if !For(time.Minute, func() bool { return n.Add(1) == 3 }) {
		t.Fatal("For gave up on a condition that became true")
	}
	if n.Load() != 3 {
		t.Errorf("checked %d times, want 3", n.Load())
	}
	if For(3*Interval, func() bool { return false }) {
		t.Error("For reported a condition that never held")
	}
}
