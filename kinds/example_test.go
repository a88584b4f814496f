package kinds_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/skeinhq/skein"
	"github.com/skeinhq/skein/action"
	"github.com/skeinhq/skein/kinds"
)

// Register the built-in kinds beside your own handlers; give them the
// dispatcher's Logger so that the Eliot lines commands print land beside
// the job's messages.
func ExampleRegister() {
	logger := action.New(os.Stderr, nil)
	handlers := skein.NewHandlers()
	if err := kinds.Register(handlers, &kinds.Config{Logger: logger, DisableHTTP: true}); err != nil {
		panic(err)
	}
	fmt.Println(handlers.Kinds())
	// then: skein.NewDispatcher(store, &skein.Config{Handlers: handlers, Logger: logger})
	// Output: [exec]
}

// The arguments of an exec job, as stored and as `skein enqueue exec` takes
// them.
func ExampleExecArgs() {
	args := kinds.ExecArgs{
		Command: []string{"python3", "send_text.py"},
		Env:     map[string]string{"USER_ID": "7"},
	}
	b, _ := json.Marshal(args)
	fmt.Println(args.Kind(), string(b))
	fmt.Println(kinds.ExecArgs{}.Validate())
	// Output:
	// exec {"command":["python3","send_text.py"],"env":{"USER_ID":"7"}}
	// field "command" is empty: want the program and its arguments, e.g. ["echo", "hello"]
}

// The arguments of an http job.
func ExampleHTTPArgs() {
	args := kinds.HTTPArgs{Method: "POST", URL: "http://127.0.0.1:8080/hook", JSON: json.RawMessage(`{"id":7}`)}
	b, _ := json.Marshal(args)
	fmt.Println(string(b))
	fmt.Println(kinds.HTTPArgs{URL: "ftp://example.com/"}.Validate())
	// Output:
	// {"method":"POST","url":"http://127.0.0.1:8080/hook","json":{"id":7}}
	// field "url": scheme "ftp" is not http or https
}
