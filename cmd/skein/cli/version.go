package cli

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { register("version", newVersionCmd) }

func newVersionCmd(_ context.Context, stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the skein version and the Go version it was built with",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			version, goVersion := "(devel)", "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				goVersion = info.GoVersion
				if info.Main.Version != "" {
					version = info.Main.Version
				}
			}
			_, err := fmt.Fprintf(stdio.Out, "skein %s (%s)\n", version, goVersion)
			return err
		},
	}
}
