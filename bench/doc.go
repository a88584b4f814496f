// Package bench holds side-by-side benchmarks of skein and its peers: each
// benchmark runs skein and the peer libraries on the same work in one run.
// It is a module of its own so that the peers never enter skein's go.mod.
//
// Run everything with `make bench` from the repository root; the latest
// figures and the exact commands are in docs/BENCHMARKS.md.
package bench
