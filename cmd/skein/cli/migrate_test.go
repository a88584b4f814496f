package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skeinhq/skein/internal/pgtest"
)

func runSkein(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestMigrateSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jobs.db")
	testMigrate(t, path, "sqlite "+path, "init")
	for _, dsn := range []string{"sqlite://" + path, path} {
		if code, out, errs := runSkein(t, "migrate", "status", "--store", dsn); code != 0 || !strings.Contains(out, "version: 1 (latest 1), up to date") {
			t.Errorf("status --store %s = %d, %q, %q", dsn, code, out, errs)
		}
	}
}

func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	var dsn string
	if os.Getenv(pgtest.EnvURL) != "" {
		dsn = pgtest.NewDatabase(t)
	} else {
		dsn = pgtest.StartServer(t).NewDatabase(t)
	}
	testMigrate(t, dsn, "postgres ", "init", "job_indexes")
}

func testMigrate(t *testing.T, dsn, storeName string, names ...string) {
	t.Helper()
	n := len(names)
	applied := make([]string, n)
	for i, name := range names {
		applied[i] = fmt.Sprintf("applied %03d_%s", i+1, name)
	}
	last := fmt.Sprintf("%03d_%s", n, names[n-1])
	steps := []struct {
		args     []string
		wantCode int
		wantOut  []string
	}{
		{[]string{"migrate", "up"}, 0, append(applied, fmt.Sprintf("schema version %d (latest %d)", n, n), storeName)},
		{[]string{"migrate", "up"}, 0, []string{"nothing to do", fmt.Sprintf("schema version %d", n)}},
		{[]string{"migrate", "status"}, 0, []string{fmt.Sprintf("version: %d (latest %d), up to date", n, n), "VERSION  NAME", "001      init  "}},
		{[]string{"migrate", "down"}, 0, []string{"reverted " + last, fmt.Sprintf("schema version %d (latest %d)", n-1, n)}},
		{[]string{"migrate", "status"}, 0, []string{fmt.Sprintf("version: %d (latest %d), 1 pending: run `skein migrate up`", n-1, n), fmt.Sprintf("%03d      %s", n, names[n-1])}},
		{[]string{"migrate", "down", "--to", "0"}, 0, []string{fmt.Sprintf("schema version 0 (latest %d)", n)}},
		{[]string{"migrate", "down"}, 0, []string{"nothing to do"}},
		{[]string{"migrate", "up", "--to", "1"}, 0, []string{"applied 001_init", "schema version 1"}},
		{[]string{"migrate", "down", "--to", "0"}, 0, []string{"reverted 001_init"}},
	}
	for _, st := range steps {
		code, out, errs := runSkein(t, append(st.args, "--store", dsn)...)
		if code != st.wantCode {
			t.Fatalf("skein %v: exit %d, want %d (stdout %q, stderr %q)", st.args, code, st.wantCode, out, errs)
		}
		for _, w := range st.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("skein %v: stdout %q lacks %q", st.args, out, w)
			}
		}
	}
	code, out, errs := runSkein(t, "migrate", "up", "--json", "--store", dsn)
	var got struct {
		Store   string
		Applied []struct {
			Version int
			Name    string
		}
		Schema struct{ Current, Latest int }
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Applied) != n || got.Applied[0].Name != "init" || got.Schema.Current != n {
		t.Errorf("migrate up --json = %d, %q (%q), parsed %+v", code, out, errs, got)
	}
	if code, _, errs := runSkein(t, "migrate", "up", "--to", "5", "--store", dsn); code == 0 || !strings.Contains(errs, fmt.Sprintf("target version 5 out of range 0 to %d", n)) {
		t.Errorf("up --to 5: exit %d, stderr %q", code, errs)
	}
}

func TestMigrateErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"migrate", "status", "--store", missing}, 1, "no such file"},
		{[]string{"migrate", "down", "--store", missing}, 1, "no such file"},
		{[]string{"migrate", "sideways", "--store", missing}, 1, `invalid argument "sideways"`},
		{[]string{"migrate"}, 1, "accepts 1 arg"},
		{[]string{"migrate", "up", "--store", "mysql://u:secret@h/db"}, 2, `unknown scheme "mysql"`},
		{[]string{"migrate", "status", "--to", "1", "--store", missing}, 2, "takes no --to"},
		{[]string{"migrate", "up", "--to", "-3", "--store", filepath.Join(dir, "x.db")}, 2, "--to -3"},
	} {
		code, _, errs := runSkein(t, tc.args...)
		if code != tc.wantCode || !strings.Contains(errs, tc.wantErr) {
			t.Errorf("skein %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs, tc.wantCode, tc.wantErr)
		}
		if strings.Contains(errs, "secret") {
			t.Errorf("skein %v: stderr shows the password: %q", tc.args, errs)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("status/down created the missing store file")
	}
}

func TestMigrateNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "newer.db")
	if code, _, errs := runSkein(t, "migrate", "up", "--store", path); code != 0 {
		t.Fatalf("migrate up: %s", errs)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO skein_migrations (version, name, applied_at) VALUES (9, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errs := runSkein(t, "migrate", "up", "--store", path)
	if code != 1 || !strings.Contains(errs, "database schema is version 9, newer than version 1") {
		t.Errorf("migrate up on a newer schema: exit %d, stderr %q", code, errs)
	}
	code, out, _ := runSkein(t, "migrate", "status", "--store", path)
	if code != 0 || !strings.Contains(out, "version: 9 (latest 1), newer than this skein knows") {
		t.Errorf("migrate status on a newer schema: exit %d, stdout %q", code, out)
	}
}

func TestMigrateStoreFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env.db")
	t.Setenv("SKEIN_STORE", path)
	if code, out, errs := runSkein(t, "migrate", "up"); code != 0 || !strings.Contains(out, "sqlite "+path) {
		t.Errorf("migrate up with SKEIN_STORE: exit %d, %q, %q", code, out, errs)
	}
}
