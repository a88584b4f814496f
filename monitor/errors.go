package monitor

// StoreError is a failure to read the store, as opposed to a problem with
// the command itself. The HTTP API answers it with 502.
type StoreError struct {
	// Op is what the monitor was doing, e.g. "listing jobs".
	Op  string
	Err error
}

func (e *StoreError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// NotFoundError says that a job asked for by id is not known. The HTTP API
// answers it with 404.
type NotFoundError struct {
	What string
}

func (e *NotFoundError) Error() string { return e.What }
