// Command skein runs background jobs whose every log line lands in one causal
// tree, and the tools around them: the tree viewer, the log shipper and the
// monitor. The commands live in package [github.com/skeinhq/skein/cmd/skein/cli].
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skeinhq/skein/cmd/skein/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Stdio())
	stop()
	os.Exit(code)
}
