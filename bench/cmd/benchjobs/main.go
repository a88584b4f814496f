// Command benchjobs measures skein's job system beside River (PostgreSQL)
// and Asynq (Redis) on the same machine and the same no-op jobs. It starts
// the servers it needs on 127.0.0.1 (a throwaway PostgreSQL cluster through
// scripts/pg-test-server, a redis-server without persistence), runs every
// measurement, prints one JSON line per measurement on stdout
//
//	{"system": "river", "metric": "e2e_jobs_per_sec", "value": 498.2, "unit": "jobs/s"}
//
// and a table on stderr. `make bench-jobs` runs it with the defaults.
//
// Measurements (each on an empty queue):
//
//   - enqueue_jobs_per_sec: durable single inserts from -producers goroutines
//   - enqueue_batch_jobs_per_sec: inserts of -batch jobs per call
//   - e2e_jobs_per_sec: -e2e-jobs jobs inserted first, then -workers workers
//     start; the time until the last one has run
//   - latency_p50_ms, latency_p95_ms, latency_p99_ms: jobs inserted one at a
//     time at -rate jobs/s for -latency-for while -workers workers run; the
//     time from insert to the start of the handler
//
// Before it is measured, every system inserts and runs -warmup jobs
// untimed (connections opened, the database's files and write-ahead log
// grown). With -runs N every measurement is taken N times and the table
// shows the medians. -metrics picks measurements, -cpuprofile profiles this
// process (the client and workers, not the servers).
//
// For the systems on PostgreSQL it also prints the server's cost per job of
// the enqueue, batch and end-to-end measurements
// ({enqueue,batch,e2e}_server_cpu_us_per_job, _commits_per_job,
// _wal_bytes_per_job): the CPU time of all the cluster's processes, its
// write transactions and the WAL it wrote, which hardly depend on what else
// runs on the machine. For every system, e2e_client_cpu_us_per_job is this
// process's CPU time (user and system) per job end to end: the system's
// client and workers (and, for SQLite, the database itself). Each
// PostgreSQL system's tables are emptied and a CHECKPOINT taken before every
// measurement, so that none pays for a checkpoint others' WAL brought on.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

type config struct {
	systems     []string
	producers   int
	enqueueJobs int
	batch       int
	batchJobs   int
	e2eJobs     int
	workers     int
	rate        int
	latencyFor  time.Duration
	repoRoot    string
	metrics     map[string]bool // nil: all
	warmup      int
	runs        int
}

// result is one measurement.
type result struct {
	System string  `json:"system"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
}

func main() {
	var c config
	systems := flag.String("systems", strings.Join(allSystems, ","), "systems to measure, comma-separated")
	flag.IntVar(&c.producers, "producers", 8, "goroutines inserting single jobs")
	flag.IntVar(&c.enqueueJobs, "enqueue-jobs", 10000, "jobs inserted one at a time")
	flag.IntVar(&c.batch, "batch", 1000, "jobs per batch insert")
	flag.IntVar(&c.batchJobs, "batch-jobs", 50000, "jobs inserted in batches")
	flag.IntVar(&c.e2eJobs, "e2e-jobs", 20000, "jobs of the end-to-end run")
	flag.IntVar(&c.workers, "workers", 50, "concurrent workers")
	flag.IntVar(&c.rate, "rate", 200, "jobs/s of the latency run")
	flag.DurationVar(&c.latencyFor, "latency-for", 5*time.Second, "length of the latency run")
	flag.StringVar(&c.repoRoot, "repo", "..", "the skein repository root (for scripts/)")
	flag.IntVar(&c.warmup, "warmup", 5000, "jobs each system inserts and runs, untimed, before it is measured (0: none)")
	flag.IntVar(&c.runs, "runs", 1, "runs of every measurement; the table shows their medians")
	metrics := flag.String("metrics", "", "measurements to run, comma-separated: enqueue, batch, e2e, latency (default all)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process to `file`")
	flag.Parse()
	c.systems = strings.Split(*systems, ",")
	if *metrics != "" {
		c.metrics = map[string]bool{}
		for _, m := range strings.Split(*metrics, ",") {
			if !slices.Contains([]string{"enqueue", "batch", "e2e", "latency"}, m) {
				fmt.Fprintf(os.Stderr, "benchjobs: -metrics: unknown measurement %q (want enqueue, batch, e2e or latency)\n", m)
				os.Exit(2)
			}
			c.metrics[m] = true
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchjobs:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "benchjobs:", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := run(ctx, &c)
	printTable(results)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var allSystems = []string{"skein-postgres", "skein-sqlite", "river", "river-tuned", "river-copy", "asynq", "asynq-tuned"}

func run(ctx context.Context, c *config) ([]result, error) {
	env := &environment{repoRoot: c.repoRoot}
	defer env.close()
	var results []result
	emit := func(r result) {
		results = append(results, r)
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
	}
	for _, name := range c.systems {
		sys, err := env.system(ctx, name)
		if err != nil {
			return results, fmt.Errorf("%s: %w", name, err)
		}
		if c.warmup > 0 {
			progress("benchjobs: warming %s up (%d jobs)\n", name, c.warmup)
			err = warmUp(ctx, c, sys)
		}
		for run := 1; err == nil && run <= c.runs; run++ {
			progress("benchjobs: measuring %s (run %d of %d)\n", name, run, c.runs)
			err = measure(ctx, c, env, sys, emit)
		}
		sys.Close()
		if err != nil {
			return results, fmt.Errorf("%s: %w", name, err)
		}
	}
	return results, nil
}

// progress writes a progress line on stderr when it is a terminal.
func progress(format string, args ...any) {
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprintf(os.Stderr, format, args...)
	}
}

// printTable prints one row per system; a metric measured several times
// shows its median.
func printTable(results []result) {
	if len(results) == 0 {
		return
	}
	metrics := []string{"enqueue_jobs_per_sec", "enqueue_batch_jobs_per_sec", "e2e_jobs_per_sec", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"}
	values := map[string][]float64{}
	var systems []string
	seen := map[string]bool{}
	for _, r := range results {
		values[r.System+" "+r.Metric] = append(values[r.System+" "+r.Metric], r.Value)
		if !seen[r.System] {
			seen[r.System] = true
			systems = append(systems, r.System)
		}
	}
	byKey := map[string]float64{}
	for k, v := range values {
		byKey[k] = median(v)
	}
	w := tabwriter.NewWriter(os.Stderr, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "system\tenqueue/s\tbatch/s\te2e/s\tp50 ms\tp95 ms\tp99 ms\t\n")
	for _, s := range systems {
		fmt.Fprint(w, s, "\t")
		for _, m := range metrics {
			if v, ok := byKey[s+" "+m]; ok {
				if strings.HasSuffix(m, "_ms") {
					fmt.Fprintf(w, "%.2f\t", v)
				} else {
					fmt.Fprintf(w, "%.0f\t", v)
				}
			} else {
				fmt.Fprint(w, "-\t")
			}
		}
		fmt.Fprintln(w)
	}
	w.Flush()

	// The PostgreSQL server's cost per job, where measured.
	costs := []string{"enqueue_server_cpu_us_per_job", "enqueue_commits_per_job", "enqueue_wal_bytes_per_job",
		"batch_server_cpu_us_per_job", "batch_wal_bytes_per_job",
		"e2e_server_cpu_us_per_job", "e2e_commits_per_job", "e2e_wal_bytes_per_job", "e2e_client_cpu_us_per_job"}
	found := false
	for _, s := range systems {
		for _, m := range costs {
			if _, ok := byKey[s+" "+m]; ok {
				found = true
			}
		}
	}
	if !found {
		return
	}
	fmt.Fprintln(os.Stderr, "\nPostgreSQL server, per job (CPU of all its processes, write transactions, WAL), and the client's CPU end to end:")
	w = tabwriter.NewWriter(os.Stderr, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "system\tenqueue µs\tcommits\tWAL B\tbatch µs\tWAL B\te2e µs\tcommits\tWAL B\tclient µs\t\n")
	for _, s := range systems {
		if _, ok := byKey[s+" e2e_server_cpu_us_per_job"]; !ok {
			if _, ok := byKey[s+" batch_server_cpu_us_per_job"]; !ok {
				if _, ok := byKey[s+" enqueue_server_cpu_us_per_job"]; !ok {
					continue
				}
			}
		}
		fmt.Fprint(w, s, "\t")
		for _, m := range costs {
			if v, ok := byKey[s+" "+m]; ok {
				if strings.Contains(m, "commits") {
					fmt.Fprintf(w, "%.3f\t", v)
				} else {
					fmt.Fprintf(w, "%.1f\t", v)
				}
			} else {
				fmt.Fprint(w, "-\t")
			}
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

// median returns the median of v (the mean of the middle two when even).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
