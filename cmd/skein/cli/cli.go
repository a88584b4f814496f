// Package cli is the skein command line, as a library so that tests can run
// every command in-process with their own standard streams.
//
// Each command lives in its own file and registers itself with [register] from
// an init function, so adding a command touches no other file.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"
)

// IO holds the standard streams a command uses. Commands never touch os.Stdin,
// os.Stdout or os.Stderr directly.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Stdio returns the process's own standard streams.
func Stdio() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// ExitError ends a command with a given exit code. Its message, when not
// empty, is printed on standard error as "skein: <message>".
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// command builds one subcommand of skein.
type command func(ctx context.Context, stdio IO) *cobra.Command

var commands = map[string]command{}

// register adds a subcommand; name only orders the help listing.
func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("cli: command registered twice: " + name)
	}
	commands[name] = c
}

// NewRoot returns the skein root command with every registered subcommand.
func NewRoot(ctx context.Context, stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "skein",
		Short: "Background jobs and causal logs that trace back to what caused them",
		Long: `skein runs background work across goroutines, processes and machines so that
every log line of it lands in one causal tree that one id finds.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetContext(ctx)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		root.AddCommand(commands[name](ctx, stdio))
	}
	return root
}

// Run runs skein with args (without the program name) and returns the exit
// code: 0 on success, 2 for a usage error, else what the command chose.
func Run(ctx context.Context, args []string, stdio IO) int {
	root := NewRoot(ctx, stdio)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintf(stdio.Err, "skein: %v\n", exit.Err)
		}
		return exit.Code
	}
	fmt.Fprintf(stdio.Err, "skein: %v\n", err)
	return 1
}
