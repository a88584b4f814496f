package tree

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
)

// Stats aggregates actions by action_type over many tasks.
type Stats struct {
	byType map[string]*typeStats
	tasks  int
}

type typeStats struct {
	count, failed int
	durations     []float64
}

// ActionStats is the summary of one action type.
type ActionStats struct {
	ActionType string  `json:"action_type"`
	Count      int     `json:"count"`
	Failed     int     `json:"failed"`
	Timed      int     `json:"timed"` // actions with both start and end timestamps
	P50        float64 `json:"p50_seconds"`
	P95        float64 `json:"p95_seconds"`
	Max        float64 `json:"max_seconds"`
}

// NewStats returns empty statistics.
func NewStats() *Stats { return &Stats{byType: make(map[string]*typeStats)} }

// Add counts every action of the task.
func (s *Stats) Add(t *Task) {
	s.tasks++
	s.addNode(t.Root)
}

func (s *Stats) addNode(n *Node) {
	if n.Message != nil {
		return
	}
	if n.Start != nil || n.End != nil {
		at := n.ActionType()
		ts := s.byType[at]
		if ts == nil {
			ts = &typeStats{}
			s.byType[at] = ts
		}
		ts.count++
		if n.Failed() {
			ts.failed++
		}
		if n.Start != nil && n.End != nil && n.Start.HasTimestamp && n.End.HasTimestamp {
			ts.durations = append(ts.durations, n.End.Timestamp-n.Start.Timestamp)
		}
	}
	for _, c := range n.Children {
		s.addNode(c)
	}
}

// Tasks returns the number of tasks added.
func (s *Stats) Tasks() int { return s.tasks }

// Summary returns one entry per action type, sorted by type. Percentiles
// are nearest-rank over the actions that have both timestamps.
func (s *Stats) Summary() []ActionStats {
	out := make([]ActionStats, 0, len(s.byType))
	for at, ts := range s.byType {
		a := ActionStats{ActionType: at, Count: ts.count, Failed: ts.failed, Timed: len(ts.durations)}
		if n := len(ts.durations); n > 0 {
			d := slices.Clone(ts.durations)
			slices.Sort(d)
			a.P50 = d[rank(n, 50)]
			a.P95 = d[rank(n, 95)]
			a.Max = d[n-1]
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y ActionStats) int {
		switch {
		case x.ActionType < y.ActionType:
			return -1
		case x.ActionType > y.ActionType:
			return 1
		}
		return 0
	})
	return out
}

// rank returns the 0-based nearest-rank index of percentile p of n values.
func rank(n, p int) int {
	r := (p*n + 99) / 100
	if r < 1 {
		r = 1
	}
	return r - 1
}

// WriteText writes the summary as an aligned table.
func (s *Stats) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "action_type\tcount\tfailed\tp50\tp95\tmax\t\n")
	for _, a := range s.Summary() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t\n", escapeString(a.ActionType), a.Count, a.Failed,
			secs(a.P50, a.Timed), secs(a.P95, a.Timed), secs(a.Max, a.Timed))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing statistics: %w", err)
	}
	return nil
}

func escapeString(s string) string { return string(appendEscaped(nil, s, false)) }

func secs(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 3, 64) + "s"
}

// WriteJSON writes the summary as a JSON object with a "tasks" count and an
// "actions" array.
func (s *Stats) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	err := enc.Encode(struct {
		Tasks   int           `json:"tasks"`
		Actions []ActionStats `json:"actions"`
	}{s.tasks, s.Summary()})
	if err != nil {
		return fmt.Errorf("writing statistics: %w", err)
	}
	return nil
}
