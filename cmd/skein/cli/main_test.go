package cli

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// childArgsEnv, when set, makes the test binary run the skein CLI with the
// arguments it holds (separated by \x1f) instead of the tests, so tests can
// start real skein processes: see childArgs.
const childArgsEnv = "SKEIN_CLI_TEST_CHILD_ARGS"

// childArgs is the environment entry that makes a re-executed test binary
// (os.Args[0]) run `skein args...`.
func childArgs(args ...string) string {
	return childArgsEnv + "=" + strings.Join(args, "\x1f")
}

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(Run(context.Background(), strings.Split(args, "\x1f"), Stdio()))
	}
	goleak.VerifyTestMain(m)
}
