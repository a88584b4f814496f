package monitor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/skeinhq/skein/monitor"
)

// still is a dispatcher that started at 12:00:00 and polled once, at
// 12:00:05; it runs one job.
type still struct{}

var noon = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func (still) Status() monitor.Status {
	return monitor.Status{UUID: "d10f43dc-ffdf-11dc-abd4-0017f2c49bdd", Started: noon, LastPoll: noon.Add(5 * time.Second),
		PollInterval: 5 * time.Second, Agents: []monitor.AgentStatus{{Name: "main", Size: 3, Active: []string{"wf1_job"}}}}
}

func (still) Polls(int) []monitor.Poll {
	return []monitor.Poll{{Key: 2, Time: noon.Add(5 * time.Second), Agents: []monitor.AgentPoll{
		{Agent: "main", Reason: "poll", Size: 3, Len: 1, New: []string{"wf1_job"}}}}}
}

func (still) Jobs(int) []monitor.JobRecord {
	return []monitor.JobRecord{{ID: "wf1_job", Kind: "send_email", Queue: "default", Agent: "main", PollKey: 2, Started: noon.Add(5 * time.Second)}}
}

// A monitor answers commands as the text protocol shows them.
func ExampleMonitor_Exec() {
	m, err := monitor.New(&monitor.Config{
		Dispatchers: []monitor.Dispatcher{still{}},
		Now:         func() time.Time { return noon.Add(7 * time.Second) },
	})
	if err != nil {
		panic(err)
	}
	for _, cmd := range []string{"async status", "async jobs", "async polls before:1H"} {
		out, err := m.Exec(context.Background(), cmd)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(out)
	}
	_, err = m.Exec(context.Background(), "async polls at:5M before:1M")
	fmt.Println("error:", err)
	// Output:
	// {
	//     "agents": {
	//         "main": {
	//             "len": 1,
	//             "queues": null,
	//             "size": 3
	//         }
	//     },
	//     "poll interval": {
	//         "seconds": 5.0
	//     },
	//     "status": "RUNNING",
	//     "time since last poll": {
	//         "seconds": 2.0
	//     },
	//     "uptime": {
	//         "seconds": 7.0
	//     },
	//     "uuid": "d10f43dc-ffdf-11dc-abd4-0017f2c49bdd"
	// }
	// [
	//     "wf1_job"
	// ]
	// []
	// error: async polls: modifiers at: and before: may not be combined: give only one
}

// A server answers one command per connection, as
// `echo 'async UUID' | nc 127.0.0.1 8701` would send it.
func ExampleServer() {
	m, err := monitor.New(&monitor.Config{Dispatchers: []monitor.Dispatcher{still{}}})
	if err != nil {
		panic(err)
	}
	srv, err := monitor.NewServer(m, &monitor.ServerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)
	out, err := monitor.Query(ctx, &monitor.ClientConfig{Addr: srv.Addr().String()}, "async UUID")
	fmt.Println(out, err)
	// Output:
	// d10f43dc-ffdf-11dc-abd4-0017f2c49bdd <nil>
}

// The HTTP API answers the same commands as JSON.
func ExampleMonitor_Handler() {
	m, err := monitor.New(&monitor.Config{
		Dispatchers: []monitor.Dispatcher{still{}},
		Now:         func() time.Time { return noon.Add(7 * time.Second) },
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/async/jobs?agent=main", "/api/async/polls?at=1H"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(body))
	}
	// Output:
	// 200 [
	//     "wf1_job"
	// ]
	// 200 []
}
