// Package messaging is the running example of skein: the messaging workflow
// of the seeds, runnable.
//
// POST /api/message/ (the web program) creates a message and enqueues
// send_notification, which (in the worker program) fans out to send_push,
// send_email and a text job; the text job is an exec job that skein serve
// runs: a small script (Python eliot, or the sendtext program) that finds
// the user has text notifications disabled and logs a warning. Every
// process logs to its own file, and `skein tree --workflow <request id>
// *.log` shows one tree with all of it. See README.md.
//
// This package holds what the programs share: the job arguments and the
// users' notification preferences.
package messaging

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

// SendNotification notifies the recipient of a message on every channel.
type SendNotification struct {
	MessageID string `json:"message_id"`
	UserID    int    `json:"user_id"`
}

// Kind implements skein.JobArgs.
func (SendNotification) Kind() string { return "send_notification" }

// SendPush sends a push notification.
type SendPush struct {
	MessageID string `json:"message_id"`
	UserID    int    `json:"user_id"`
}

// Kind implements skein.JobArgs.
func (SendPush) Kind() string { return "send_push" }

// SendEmail sends an email.
type SendEmail struct {
	MessageID string `json:"message_id"`
	UserID    int    `json:"user_id"`
}

// Kind implements skein.JobArgs.
func (SendEmail) Kind() string { return "send_email" }

// Environment variables of the text job's command (besides skein's own).
const (
	EnvUsers     = "MESSAGING_USERS"
	EnvUserID    = "MESSAGING_USER_ID"
	EnvMessageID = "MESSAGING_MESSAGE_ID"
)

// Prefs are one user's notification channels.
type Prefs struct {
	Name  string `json:"name"`
	Push  bool   `json:"push"`
	Email bool   `json:"email"`
	Text  bool   `json:"text"`
}

// LoadUsers reads the users file: a JSON object from user id to Prefs.
func LoadUsers(path string) (map[int]Prefs, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	var raw map[string]Prefs
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading users %s: %w", path, err)
	}
	users := make(map[int]Prefs, len(raw))
	for k, p := range raw {
		id, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("reading users %s: key %q is not a user id", path, k)
		}
		users[id] = p
	}
	return users, nil
}
