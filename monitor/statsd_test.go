package monitor

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// udpListener is a statsd server on loopback: it hands over each packet
// received.
func udpListener(t *testing.T) (net.PacketConn, <-chan string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	packets := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case packets <- string(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc, packets
}

func receive(t *testing.T, packets <-chan string) string {
	t.Helper()
	select {
	case p := <-packets:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no statsd packet received")
		return ""
	}
}

func TestStatsdReport(t *testing.T) {
	pc, packets := udpListener(t)
	m, d := newSeedMonitor(t)
	d.addAgent("mail.out", 2)
	d.put("j1", "send", "default")
	d.poll()
	m.cfg.Store = clusterStore(t)
	r, err := NewStatsdReporter(m, &StatsdConfig{Addr: pc.LocalAddr().String(), Prefix: "app.web-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	// The first report has no CPU figure yet (it needs two samples).
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := receive(t, packets)
	if strings.Contains(first, ".process.cpu:") {
		t.Errorf("first report has a CPU figure:\n%s", first)
	}
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(receive(t, packets), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(rest, "|g") {
			t.Fatalf("bad statsd line %q", line)
		}
		got[name] = strings.TrimSuffix(rest, "|g")
	}
	for name, want := range map[string]string{
		"app.web-1.agent.main.active":     "1",
		"app.web-1.agent.main.size":       "3",
		"app.web-1.agent.mail_out.active": "0",
		"app.web-1.agent.mail_out.size":   "2",
		"app.web-1.queue.default.depth":   "2",
		"app.web-1.queue.default.running": "1",
		"app.web-1.queue.email.depth":     "0",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	for _, name := range []string{"app.web-1.process.cpu", "app.web-1.process.rss", "app.web-1.process.goroutines"} {
		if got[name] == "" || strings.HasPrefix(got[name], "-") {
			t.Errorf("%s = %q, want a non-negative value", name, got[name])
		}
	}
}

func TestStatsdSplitsPackets(t *testing.T) {
	pc, packets := udpListener(t)
	clock := &fakeClock{now: seedStart}
	d := newFakeDispatcher(clock, seedUUID, time.Second)
	for i := range 40 {
		d.addAgent(strings.Repeat("a", 20)+string(rune('A'+i%26))+string(rune('a'+i/26)), 1)
	}
	m, err := New(&Config{Dispatchers: []Dispatcher{d}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewStatsdReporter(m, &StatsdConfig{Addr: pc.LocalAddr().String(), MaxPacketBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for lines < 81 { // 40 agents × 2, and goroutines at least
		p := receive(t, packets)
		if len(p) > 256 {
			t.Errorf("packet of %d bytes, limit 256", len(p))
		}
		lines += strings.Count(p, "\n") + 1
	}
}

func TestStatsdLoop(t *testing.T) {
	pc, packets := udpListener(t)
	m, _ := newSeedMonitor(t)
	r, err := NewStatsdReporter(m, &StatsdConfig{Addr: pc.LocalAddr().String(), Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		p := receive(t, packets)
		if !strings.Contains(p, "skein.agent.main.size:3|g") {
			t.Errorf("periodic report:\n%s", p)
		}
		// Start took the first CPU sample: every report has the figure.
		if !strings.Contains(p, "skein.process.cpu:") {
			t.Errorf("periodic report without CPU:\n%s", p)
		}
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := r.Report(context.Background()); err == nil {
		t.Error("Report after Stop succeeded")
	}
}

func TestStatsdConfig(t *testing.T) {
	m, _ := New(nil)
	for _, tt := range []struct {
		cfg  StatsdConfig
		want string
	}{
		{StatsdConfig{Interval: -1}, "Interval"},
		{StatsdConfig{MaxPacketBytes: 10}, "MaxPacketBytes"},
		{StatsdConfig{Prefix: "a:b"}, "Prefix"},
	} {
		if _, err := NewStatsdReporter(m, &tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewStatsdReporter(%+v) = %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
}
