package action

import (
	"fmt"
	"os"
)

// OpenFile opens (creating it if needed) the log file at path for
// appending, as a destination for [New]. Every message is one write(2) to a
// file opened with O_APPEND, so several processes can share one log file
// without tearing each other's lines.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("action: opening log file: %w", err)
	}
	return f, nil
}
