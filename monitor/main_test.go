package monitor

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/skeinhq/skein/internal/pgtest"
)

// TestMain checks for leaked goroutines and stops the PostgreSQL server
// that the asyncdb tests may have started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
