package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// UserError is an error meant for the person who typed the command: its text
// is shown to them as is. Any other error reaching the Router is logged and
// answered with a generic message, so internals never leak into a chat.
type UserError struct {
	// Msg says what is wrong, in the user's terms.
	Msg string
	// Hint, if set, says what to do instead (a usage line, an example).
	Hint string
}

// Userf returns a *UserError with a formatted message. Arguments are
// formatted into plain text; renderers escape it.
func Userf(format string, args ...any) *UserError {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

func (e *UserError) withHint(hint string) *UserError {
	e.Hint = hint
	return e
}

// Error returns the message and, if any, the hint.
func (e *UserError) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + " (" + e.Hint + ")"
}

// ErrNotFound is what the Router expects, through errors.Is, from the
// interfaces it reads when an incident, VM, host or silence does not exist,
// unless Options.NotFound says otherwise.
var ErrNotFound = errors.New("not found")

// Refusal records a command the Router would not run for its user, and why.
type Refusal struct {
	At      time.Time
	User    string
	Channel string
	Origin  Origin
	// Command is the refused command's text (verb and arguments).
	Command string
	// Group is the permission group the verb needs.
	Group Group
	// Reason is the explanation shown to the user.
	Reason string
}

// Auditor is told about every refused command. Implementations must not
// block for long: the user is waiting for the answer.
type Auditor interface {
	Refused(ctx context.Context, r Refusal)
}

// RetryAfterError is implemented by errors that know how long to wait before
// trying again, such as a chat API's HTTP 429 with a Retry-After header. The
// Notifier waits that long instead of its own backoff.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// PermanentError is implemented by errors that retrying cannot fix (a
// message the chat API refuses as malformed). The Notifier logs such a
// failure, drops the notification and acknowledges its event; every other
// error is retried until the context ends.
type PermanentError interface {
	error
	Permanent() bool
}

func retryAfter(err error) (time.Duration, bool) {
	var ra RetryAfterError
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return d, true
		}
	}
	return 0, false
}

func isPermanent(err error) bool {
	var p PermanentError
	return errors.As(err, &p) && p.Permanent()
}

func asUserError(err error) (*UserError, bool) {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue, true
	}
	return nil, false
}
