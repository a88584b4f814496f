package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skeinhq/skein/store"
	"github.com/skeinhq/skein/store/open"
)

func init() { register("migrate", newMigrateCmd) }

type migrateFlags struct {
	store  string
	to     int
	asJSON bool
}

func newMigrateCmd(_ context.Context, stdio IO) *cobra.Command {
	f := &migrateFlags{}
	cmd := &cobra.Command{
		Use:   "migrate up|down|status",
		Short: "Create, upgrade, revert or inspect the job store's schema",
		Long: `migrate manages the schema of the job store.

  skein migrate up       apply every pending migration (or up to --to)
  skein migrate down     revert the newest migration (or down to --to; --to 0 removes everything)
  skein migrate status   show the schema version and every migration

The store is --store, else $` + open.EnvStore + `, else ` + open.DefaultDSN + `:
a SQLite file path, sqlite://PATH, or postgres://user:pass@host:port/database.`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"up", "down", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMigrate(cmd, stdio, f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.store, "store", "", "store DSN (default $"+open.EnvStore+" or "+open.DefaultDSN+")")
	cmd.Flags().IntVar(&f.to, "to", -1, "target schema version (default: latest for up, one step for down)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	return cmd
}

func runMigrate(cmd *cobra.Command, stdio IO, f *migrateFlags, action string) error {
	ctx := cmd.Context()
	dsn := f.store
	if dsn == "" {
		dsn = os.Getenv(open.EnvStore)
	}
	target, err := open.Parse(dsn)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	if action == "status" && cmd.Flags().Changed("to") {
		return &ExitError{Code: 2, Err: errors.New("migrate status takes no --to")}
	}
	if action != "up" && target.Driver == open.SQLite {
		// Reading or reverting must not create a missing file.
		if _, err := os.Stat(target.Path); errors.Is(err, os.ErrNotExist) {
			return &ExitError{Code: 1, Err: fmt.Errorf("store %s: no such file", target)}
		}
	}
	s, err := open.Open(ctx, dsn, nil)
	if err != nil {
		return fmt.Errorf("opening store %s: %w", target, err)
	}
	defer s.Close()
	var opts *store.MigrateOpts
	if f.to >= 0 {
		opts = &store.MigrateOpts{TargetVersion: &f.to}
	} else if cmd.Flags().Changed("to") {
		return &ExitError{Code: 2, Err: fmt.Errorf("--to %d: want a version of 0 or more", f.to)}
	}
	var done []store.Migration
	switch action {
	case "up":
		done, err = s.MigrateUp(ctx, opts)
	case "down":
		done, err = s.MigrateDown(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", target, err)
	}
	st, err := s.SchemaStatus(ctx)
	if err != nil {
		return fmt.Errorf("store %s: %w", target, err)
	}
	if f.asJSON {
		out := struct {
			Store    string              `json:"store"`
			Applied  []store.Migration   `json:"applied,omitempty"`
			Reverted []store.Migration   `json:"reverted,omitempty"`
			Schema   *store.SchemaStatus `json:"schema"`
		}{Store: target.String(), Schema: st}
		if action == "up" {
			out.Applied = done
		} else {
			out.Reverted = done
		}
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := stdio.Out
	switch action {
	case "up", "down":
		verb := "applied"
		if action == "down" {
			verb = "reverted"
		}
		for _, m := range done {
			fmt.Fprintf(w, "%s %03d_%s\n", verb, m.Version, m.Name)
		}
		if len(done) == 0 {
			fmt.Fprintf(w, "nothing to do\n")
		}
		fmt.Fprintf(w, "%s: schema version %d (latest %d)\n", target, st.Current, st.Latest)
		return nil
	}
	fmt.Fprintf(w, "store:   %s\n", target)
	fmt.Fprintf(w, "version: %d (latest %d)", st.Current, st.Latest)
	switch {
	case st.Current < st.Latest:
		fmt.Fprintf(w, ", %d pending: run `skein migrate up`\n", st.Latest-st.Current)
	case st.Current > st.Latest:
		fmt.Fprintf(w, ", newer than this skein knows\n")
	default:
		fmt.Fprintf(w, ", up to date\n")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, m := range st.Migrations {
		at := "pending"
		if !m.AppliedAt.IsZero() {
			at = m.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(tw, "%03d\t%s\t%s\n", m.Version, m.Name, at)
	}
	return tw.Flush()
}
