package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// environment starts the servers the systems need, once each, and stops
// them at the end.
type environment struct {
	repoRoot string
	pgDir    string
	pgDSN    string
	redis    *exec.Cmd
	redisDir string
	redisAdr string
	tmp      string
}

func (e *environment) system(ctx context.Context, name string) (system, error) {
	switch name {
	case "river", "river-tuned", "river-copy":
		dsn, err := e.postgres()
		if err != nil {
			return nil, err
		}
		return newRiver(ctx, name, dsn)
	case "asynq", "asynq-tuned":
		addr, err := e.redisServer()
		if err != nil {
			return nil, err
		}
		return newAsynq(name, addr)
	case "skein-postgres":
		dsn, err := e.postgres()
		if err != nil {
			return nil, err
		}
		return newSkein(ctx, name, dsn)
	case "skein-sqlite":
		if e.tmp == "" {
			dir, err := os.MkdirTemp("", "benchjobs-sqlite-")
			if err != nil {
				return nil, err
			}
			e.tmp = dir
		}
		return newSkein(ctx, name, filepath.Join(e.tmp, "bench.db"))
	}
	return nil, fmt.Errorf("unknown system %q (known: %s)", name, strings.Join(allSystems, ", "))
}

// postgres starts a throwaway cluster with PostgreSQL's stock durability
// settings through scripts/pg-test-server.
func (e *environment) postgres() (string, error) {
	if e.pgDSN != "" {
		return e.pgDSN, nil
	}
	dir, err := os.MkdirTemp("", "benchjobs-pg-")
	if err != nil {
		return "", err
	}
	script := filepath.Join(e.repoRoot, "scripts", "pg-test-server")
	out, err := exec.Command(script, "start", dir).Output()
	if err != nil {
		os.RemoveAll(dir)
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("starting PostgreSQL with %s: %v\n%s", script, err, ee.Stderr)
		}
		return "", fmt.Errorf("starting PostgreSQL with %s: %w", script, err)
	}
	e.pgDir, e.pgDSN = dir, strings.TrimSpace(string(out))
	return e.pgDSN, nil
}

// redisServer starts Debian's redis-server on a free loopback port without
// persistence (as Asynq is usually measured).
func (e *environment) redisServer() (string, error) {
	if e.redisAdr != "" {
		return e.redisAdr, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("no redis-server (apt-get install redis-server): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "benchjobs-redis-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting redis-server: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("redis-server did not start within 30 s")
	}
	e.redis, e.redisDir = cmd, dir
	e.redisAdr = fmt.Sprintf("127.0.0.1:%d", port)
	return e.redisAdr, nil
}

func (e *environment) close() {
	if e.pgDir != "" {
		_ = exec.Command(filepath.Join(e.repoRoot, "scripts", "pg-test-server"), "stop", e.pgDir).Run()
	}
	if e.redis != nil {
		_ = e.redis.Process.Kill()
		_ = e.redis.Wait()
		os.RemoveAll(e.redisDir)
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
}
