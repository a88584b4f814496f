package open_test

import (
	"fmt"

	"github.com/skeinhq/skein/store/open"
)

// Every skein command names its store with one DSN.
func ExampleParse() {
	for _, dsn := range []string{"", "/var/lib/skein/jobs.db", "sqlite://./jobs.db", "postgres://skein:secret@db.internal:5432/jobs"} {
		t, err := open.Parse(dsn)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t)
	}
	_, err := open.Parse("mysql://db/jobs")
	fmt.Println(err)
	// Output:
	// sqlite ./skein.db
	// sqlite /var/lib/skein/jobs.db
	// sqlite ./jobs.db
	// postgres postgres://skein:xxxxx@db.internal:5432/jobs
	// store "mysql://db/jobs": unknown scheme "mysql" (want a SQLite path, sqlite://PATH or postgres://...)
}
