package action

import "context"

type workflowKey struct{}

// WithWorkflow returns a context whose messages carry workflow id id in the
// "workflow_id" field: every action started in it, every message logged in
// such an action, and every record the [Handler] writes for it. A workflow
// groups all the tasks that one request caused, across processes; the job
// system and the HTTP middleware set it for you.
func WithWorkflow(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, workflowKey{}, id)
}

// Workflow returns the workflow id of ctx, or "" if there is none.
func Workflow(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(workflowKey{}).(string)
	return id
}
