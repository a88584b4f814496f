// Command treegen writes the benchmark log of package treegen to standard
// output or a file, e.g. to time other tree viewers on the same input:
//
//	go run ./treegen/cmd/treegen -o big.log
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/skeinhq/skein/bench/treegen"
)

func main() {
	out := flag.String("o", "-", "output file (- for standard output)")
	msgs := flag.Int("messages", 0, "number of messages (0: 200,000)")
	seed := flag.Uint64("seed", 0, "random seed (0: 1)")
	flag.Parse()
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "treegen:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	st, err := treegen.Generate(w, treegen.Config{Messages: *msgs, Seed: *seed})
	if err != nil {
		fmt.Fprintln(os.Stderr, "treegen:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "treegen: %d messages, %d tasks (%d failed actions), %d bytes\n", st.Messages, st.Tasks, st.Failed, st.Bytes)
}
