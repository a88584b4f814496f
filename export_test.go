package skein

import "context"

// CleanupOnce runs one round of the cleanup loop, for tests.
func (d *Dispatcher) CleanupOnce(ctx context.Context) { d.cleanup(ctx) }
