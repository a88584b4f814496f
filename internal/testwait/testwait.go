// Package testwait waits, in tests, for something another process does:
// a file it writes, a row it stores, its exit. Within one process, tests
// wait on channels instead; across processes there is no channel, so the
// condition is checked on a ticker until a deadline.
package testwait

import "time"

// Interval is how often [For] checks its condition.
const Interval = 20 * time.Millisecond

// For calls cond every Interval until it returns true (For returns true)
// or timeout has passed (For returns false after one last check).
func For(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}
