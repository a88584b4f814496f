package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// serverCost is what the PostgreSQL cluster spent: CPU time of all its
// processes (backends, WAL writer, checkpointer, autovacuum, and the
// children that exited meanwhile, which the postmaster reaped), write
// transactions (each a durable commit) and WAL bytes. Per job, these hardly depend on what else runs on the
// machine, unlike wall time.
type serverCost struct {
	cpu     time.Duration
	commits int64
	wal     int64
}

// clockTick is the unit of /proc's CPU times (USER_HZ is 100 on Linux).
const clockTick = 10 * time.Millisecond

// pgCost samples the cluster's cost so far, or returns ok false when no
// PostgreSQL cluster runs.
func (e *environment) pgCost(ctx context.Context) (c serverCost, ok bool, err error) {
	if e.pgDir == "" {
		return c, false, nil
	}
	pidFile, err := os.ReadFile(filepath.Join(e.pgDir, "data", "postmaster.pid"))
	if err != nil {
		pidFile, err = os.ReadFile(filepath.Join(e.pgDir, "postmaster.pid"))
	}
	if err != nil {
		return c, false, fmt.Errorf("reading the postmaster's pid: %w", err)
	}
	master, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		return c, false, fmt.Errorf("reading the postmaster's pid: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return c, false, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited
		}
		// Fields after the ")" that ends the command name: ppid is the 2nd,
		// utime, stime, cutime and cstime the 12th to 15th.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		if pid != master && ppid != master {
			continue
		}
		last := 12
		if pid == master {
			last = 14 // with the reaped children's times
		}
		for i := 11; i <= last; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			c.cpu += time.Duration(v) * clockTick
		}
	}
	conn, err := pgx.Connect(ctx, e.pgDSN)
	if err != nil {
		return c, false, err
	}
	defer conn.Close(ctx)
	// The next transaction id counts the transactions that wrote (each
	// got an id), without taking one.
	err = conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
		(pg_current_wal_lsn() - '0/0')::bigint`).Scan(&c.commits, &c.wal)
	if err != nil {
		return c, false, fmt.Errorf("reading the server's counters: %w", err)
	}
	return c, true, nil
}

// costMeter emits a measurement's server cost per job.
type costMeter struct {
	env      *environment
	system   string
	postgres bool // the system runs on the PostgreSQL cluster
	emit     func(result)
	start    serverCost
	ok       bool
}

func (m *costMeter) begin(ctx context.Context) error {
	if !m.postgres {
		return nil
	}
	var err error
	m.start, m.ok, err = m.env.pgCost(ctx)
	return err
}

// end emits group_server_cpu_us_per_job, group_commits_per_job and
// group_wal_bytes_per_job.
func (m *costMeter) end(ctx context.Context, group string, jobs int) error {
	if !m.ok {
		return nil
	}
	c, _, err := m.env.pgCost(ctx)
	if err != nil {
		return err
	}
	n := float64(jobs)
	m.emit(result{m.system, group + "_server_cpu_us_per_job", float64((c.cpu - m.start.cpu).Microseconds()) / n, "µs/job"})
	m.emit(result{m.system, group + "_commits_per_job", float64(c.commits-m.start.commits) / n, "commits/job"})
	m.emit(result{m.system, group + "_wal_bytes_per_job", float64(c.wal-m.start.wal) / n, "B/job"})
	return nil
}

// checkpoint runs CHECKPOINT after a system emptied its tables, before it
// fills them and is measured: every measurement then starts right after a
// checkpoint, so that no system pays, while measured, for a checkpoint the
// WAL of earlier measurements (its own or another system's) brought on; and
// the pages it fills are new since the checkpoint, so its measured writes
// carry no full-page images for them. Without the right (a role that is
// not superuser nor pg_checkpoint) measurements go on without it.
func checkpoint(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) {
	if _, err := db.Exec(ctx, "CHECKPOINT"); err != nil && !checkpointWarned.Swap(true) {
		fmt.Fprintf(os.Stderr, "benchjobs: CHECKPOINT before measurements failed (%v); measuring without\n", err)
	}
}

var checkpointWarned atomic.Bool
