package action_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/skeinhq/skein/action"
)

// fixed makes the examples' output deterministic: one clock tick and one
// task uuid per call.
func fixed() *action.Options {
	t := time.Date(2026, 11, 22, 14, 28, 20, 0, time.UTC)
	n := 0
	return &action.Options{
		Now:         func() time.Time { t = t.Add(time.Millisecond); return t },
		NewTaskUUID: func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) },
	}
}

func Example() {
	logger := action.New(os.Stdout, fixed())
	ctx := action.WithLogger(context.Background(), logger)
	log := slog.New(logger.Handler(nil))

	ctx, checkout := action.Start(ctx, "shop:checkout", slog.Int("user_id", 42))
	log.InfoContext(ctx, "cart loaded", "items", 2)
	err := action.Run(ctx, "payment:charge", func(ctx context.Context) error {
		return errors.New("card declined")
	})
	checkout.Finish(err)
	// Output:
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[1],"timestamp":1795357700.001,"action_type":"shop:checkout","action_status":"started","user_id":42}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[2],"timestamp":1795357700.002,"message_type":"cart loaded","log_level":"INFO","items":2}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[3,1],"timestamp":1795357700.003,"action_type":"payment:charge","action_status":"started"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[3,2],"timestamp":1795357700.004,"action_type":"payment:charge","action_status":"failed","exception":"errors.errorString","reason":"card declined"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[4],"timestamp":1795357700.005,"action_type":"shop:checkout","action_status":"failed","exception":"errors.errorString","reason":"card declined"}
}

// A task continued in another process: the client serializes its position,
// the server continues it.
func ExampleContinue() {
	client := action.WithLogger(context.Background(), action.New(os.Stdout, fixed()))
	_, req := action.Start(client, "client:request")
	taskID := req.SerializeTaskID() // sent in a header, a job row, …

	server := action.WithLogger(context.Background(), action.New(os.Stdout, fixed()))
	ctx, remote, err := action.Continue(server, taskID, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	action.Log(ctx, "server:handled")
	remote.End()
	req.End()
	// Output:
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[1],"timestamp":1795357700.001,"action_type":"client:request","action_status":"started"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[2,1],"timestamp":1795357700.001,"action_type":"eliot:remote_task","action_status":"started"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[2,2],"timestamp":1795357700.002,"message_type":"server:handled"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[2,3],"timestamp":1795357700.003,"action_type":"eliot:remote_task","action_status":"succeeded"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[3],"timestamp":1795357700.002,"action_type":"client:request","action_status":"succeeded"}
}

func ExampleParseTaskID() {
	_, err := action.ParseTaskID("1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/0")
	fmt.Println(err)
	id, _ := action.ParseTaskID("1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/2")
	fmt.Println(id.Level, id.Child(1))
	// Output:
	// task id "1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/0": level part "0" is not a positive integer
	// [2 2] 1c1defcd-38e9-4a99-9c6c-95bc6da3dc61@/2/2/1
}

// Wrap adds the causal position to records of a handler a team already uses.
func ExampleWrap() {
	log := slog.New(action.Wrap(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	ctx := action.WithLogger(context.Background(), action.New(os.Stdout, fixed()))
	ctx = action.WithWorkflow(ctx, "req-42")
	ctx, a := action.Start(ctx, "job:send_email")
	log.InfoContext(ctx, "sent", "to", "ann@example.com")
	a.End()
	// Output:
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[1],"timestamp":1795357700.001,"workflow_id":"req-42","action_type":"job:send_email","action_status":"started"}
	// {"level":"INFO","msg":"sent","to":"ann@example.com","task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[2],"workflow_id":"req-42"}
	// {"task_uuid":"00000000-0000-4000-8000-000000000001","task_level":[3],"timestamp":1795357700.002,"workflow_id":"req-42","action_type":"job:send_email","action_status":"succeeded"}
}
