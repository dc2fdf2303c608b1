package tickets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jira "github.com/andygrunwald/go-jira"
	"github.com/trivago/tgo/tcontainer"

	"github.com/vmtriage/vmtriage/internal/retryafter"
)

// maxText is Jira's limit for descriptions and comments, in characters.
const maxText = 32767

// maxSummary is Jira's limit for a summary, in characters.
const maxSummary = 255

// MaxRetryAfter caps how long a Retry-After header can make the worker wait.
const MaxRetryAfter = 10 * time.Minute

// APIError is a failed Jira call: what was being done, the HTTP status (0
// when no response came: a timeout, a refused connection), how long Jira
// asked to wait, and Jira's own messages. Its text never holds the token.
type APIError struct {
	// Op says what was being done ("create issue", "comment on OPS-1").
	Op     string
	Status int
	// RetryAfter is the wait Jira asked for (429, 503), 0 if none.
	RetryAfter time.Duration
	// Messages are Jira's errorMessages and "field: message" errors,
	// sorted by field.
	Messages []string
	// Hint says what to change, for errors retrying cannot fix.
	Hint string
	// Err is the transport error when no response came (already cleaned
	// of the token).
	Err error
}

// Error says what failed and why, and what to do for a permanent error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("jira: ")
	b.WriteString(e.Op)
	if e.Status != 0 {
		b.WriteString(": HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if len(e.Messages) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Messages, "; "))
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *APIError) Unwrap() error { return e.Err }

// Temporary reports whether the same call may succeed later.
func (e *APIError) Temporary() bool { return Retryable(e.Status) }

// Permanent reports whether retrying cannot help (the bot's
// PermanentError).
func (e *APIError) Permanent() bool { return !e.Temporary() }

// Retryable is the one mapping from an HTTP status to "try again": 0 (no
// response: timeout, connection refused), 408, 429 and 5xx are worth
// retrying; any other 4xx needs a person (a bad field, a missing
// permission) and is not retried.
func Retryable(status int) bool {
	return status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// RetryAfter reads a Retry-After header (seconds, or an HTTP date relative
// to now), capped at MaxRetryAfter; 0 when absent or unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	return retryafter.Parse(h, now, MaxRetryAfter)
}

// temporary reports whether err (from a Jira call or the store) may go
// away by itself; only a Jira 4xx and a missing incident do not.
func temporary(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	var pe *permanentError
	return !errors.As(err, &pe)
}

// permanentError marks a failure that is not Jira's answer but still needs
// a person (no transition with a configured name, for instance).
type permanentError struct{ msg string }

func (e *permanentError) Error() string   { return e.msg }
func (e *permanentError) Permanent() bool { return true }

// found is what a lookup needs to know of an existing ticket.
type found struct {
	Key      string
	Labels   []string
	Done     bool // status category "done"
	Resolved time.Time
}

// newIssue is what a created ticket carries.
type newIssue struct {
	Summary, Description string
	Labels               []string
	Priority, Component  string
	Assignee             string
}

// client makes the Jira calls Tickets needs, through go-jira (REST v2, so
// descriptions and comments are wiki markup), and turns every failure into
// an *APIError.
type client struct {
	jc        *jira.Client
	flavor    Flavor
	project   string
	issueType string
	browse    string
	now       func() time.Time
	// secrets are the forms in which the token could appear in a
	// transport error; they are replaced before an error leaves.
	secrets []string
}

func newClient(o Options) (*client, error) {
	hc := *o.HTTPClient
	var tp http.RoundTripper
	if o.User != "" {
		tp = &jira.BasicAuthTransport{Username: o.User, Password: o.Token.Reveal(), Transport: hc.Transport}
	} else {
		tp = &jira.PATAuthTransport{Token: o.Token.Reveal(), Transport: hc.Transport}
	}
	hc.Transport = tp
	jc, err := jira.NewClient(&hc, o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("tickets: jira client for %s: %w", o.BaseURL, err)
	}
	tok := o.Token.Reveal()
	return &client{
		jc: jc, flavor: o.Flavor, project: o.Project, issueType: o.IssueType,
		browse: strings.TrimRight(o.BaseURL, "/") + "/browse/",
		now:    o.Clock.Now,
		secrets: []string{tok, url.QueryEscape(tok),
			base64.StdEncoding.EncodeToString([]byte(o.User + ":" + tok))},
	}, nil
}

// URL is the ticket's address for people.
func (c *client) URL(key string) string { return c.browse + url.PathEscape(key) }

// fail turns a go-jira result into an *APIError.
func (c *client) fail(op string, resp *jira.Response, err error) error {
	e := &APIError{Op: op}
	if resp == nil || resp.Response == nil {
		e.Err = errors.New(c.redact(err.Error()))
		return e
	}
	e.Status = resp.StatusCode
	e.RetryAfter = RetryAfter(resp.Header, c.now())
	var je *jira.Error
	if errors.As(err, &je) {
		e.Messages = jiraMessages(je.ErrorMessages, je.Errors)
	} else if resp.Body != nil {
		// The methods that do not parse the error leave the body unread.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var doc jira.Error
		if json.Unmarshal(body, &doc) == nil {
			e.Messages = jiraMessages(doc.ErrorMessages, doc.Errors)
		}
	}
	if len(e.Messages) == 0 {
		e.Messages = []string{http.StatusText(e.Status)}
	}
	for i, m := range e.Messages {
		e.Messages[i] = c.redact(m)
	}
	e.Hint = hint(e)
	return e
}

func jiraMessages(msgs []string, fields map[string]string) []string {
	out := slices.Clone(msgs)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+": "+fields[k])
	}
	return out
}

func (c *client) redact(s string) string {
	for _, sec := range c.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "<secret>")
		}
	}
	return s
}

// hint says which setting to change for an error no retry can fix.
func hint(e *APIError) string {
	if e.Temporary() {
		return ""
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return "Jira did not accept the credentials: check VMTRIAGE_JIRA_USER and VMTRIAGE_JIRA_TOKEN"
	case http.StatusForbidden:
		return "the Jira user lacks a permission in the project: grant it Browse, Create, Edit, Comment and Transition Issues"
	case http.StatusNotFound:
		return "check VMTRIAGE_JIRA_URL and that the issue still exists"
	case http.StatusGone:
		return "this endpoint was removed: set the Jira flavour to cloud"
	}
	text := strings.ToLower(strings.Join(e.Messages, " "))
	switch {
	case strings.Contains(text, "priority"):
		return "check the severity→priority map (VMTRIAGE_JIRA_PRIORITIES) against the project's priority scheme"
	case strings.Contains(text, "component"):
		return "check the cause→component map (VMTRIAGE_JIRA_COMPONENTS) against the project's components"
	case strings.Contains(text, "assignee"), strings.Contains(text, "assigned"):
		return "check the cause→assignee map (VMTRIAGE_JIRA_ASSIGNEES): account ids on Cloud, user names on Server"
	case strings.Contains(text, "issuetype"), strings.Contains(text, "issue type"):
		return "check VMTRIAGE_JIRA_ISSUE_TYPE against the project's issue types"
	case strings.Contains(text, "project"):
		return "check VMTRIAGE_JIRA_PROJECT"
	}
	return "fix the field Jira names; the operation is not retried"
}

// search finds tickets of the project carrying label, newest first.
func (c *client) search(ctx context.Context, label string) ([]found, error) {
	jql := lookupJQL(c.project, label)
	fields := []string{"labels", "status", "resolutiondate", "created"}
	var (
		issues []jira.Issue
		resp   *jira.Response
		err    error
	)
	if c.flavor == Cloud {
		issues, resp, err = c.jc.Issue.SearchV2JQLWithContext(ctx, jql, &jira.SearchOptionsV2{Fields: fields, MaxResults: 20})
	} else {
		issues, resp, err = c.jc.Issue.SearchWithContext(ctx, jql, &jira.SearchOptions{Fields: fields, MaxResults: 20})
	}
	if err != nil {
		return nil, c.fail("search tickets labelled "+label, resp, err)
	}
	out := make([]found, 0, len(issues))
	for _, is := range issues {
		f := found{Key: is.Key}
		if is.Fields != nil {
			f.Labels = is.Fields.Labels
			if is.Fields.Status != nil {
				f.Done = is.Fields.Status.StatusCategory.Key == jira.StatusCategoryComplete
			}
			f.Resolved = time.Time(is.Fields.Resolutiondate)
		}
		out = append(out, f)
	}
	return out, nil
}

// create opens a ticket and returns its key.
func (c *client) create(ctx context.Context, n newIssue) (string, error) {
	fields := &jira.IssueFields{
		Project:     jira.Project{Key: c.project},
		Type:        jira.IssueType{Name: c.issueType},
		Summary:     n.Summary,
		Description: n.Description,
		Labels:      n.Labels,
	}
	if n.Priority != "" {
		fields.Priority = &jira.Priority{Name: n.Priority}
	}
	if n.Component != "" {
		fields.Components = []*jira.Component{{Name: n.Component}}
	}
	if n.Assignee != "" {
		// go-jira's User would also send an empty "Password"; send the
		// one property each flavour expects instead.
		who := map[string]string{"name": n.Assignee}
		if c.flavor == Cloud {
			who = map[string]string{"accountId": n.Assignee}
		}
		fields.Unknowns = tcontainer.MarshalMap{"assignee": who}
	}
	is, resp, err := c.jc.Issue.CreateWithContext(ctx, &jira.Issue{Fields: fields})
	if err != nil {
		return "", c.fail("create issue in "+c.project, resp, err)
	}
	if is.Key == "" {
		return "", &APIError{Op: "create issue in " + c.project, Status: resp.StatusCode, Messages: []string{"Jira answered without an issue key"}}
	}
	return is.Key, nil
}

// comment adds a wiki-markup comment. go-jira v1's AddComment sends empty
// author and visibility objects that Cloud refuses, so the request is
// built by hand with the body only.
func (c *client) comment(ctx context.Context, key, body string) error {
	req, err := c.jc.NewRequestWithContext(ctx, http.MethodPost, "rest/api/2/issue/"+url.PathEscape(key)+"/comment", map[string]string{"body": body})
	if err != nil {
		return fmt.Errorf("comment on %s: %w", key, err)
	}
	resp, err := c.jc.Do(req, nil)
	if err != nil {
		return c.fail("comment on "+key, resp, err)
	}
	resp.Body.Close()
	return nil
}

// comments returns the bodies of the ticket's most recent comments (up to
// 200), to check whether a comment whose answer was lost was written.
func (c *client) comments(ctx context.Context, key string) ([]string, error) {
	req, err := c.jc.NewRequestWithContext(ctx, http.MethodGet, "rest/api/2/issue/"+url.PathEscape(key)+"/comment?orderBy=-created&maxResults=200", nil)
	if err != nil {
		return nil, fmt.Errorf("read comments of %s: %w", key, err)
	}
	var out struct {
		Comments []struct {
			Body string `json:"body"`
		} `json:"comments"`
	}
	resp, err := c.jc.Do(req, &out)
	if err != nil {
		return nil, c.fail("read comments of "+key, resp, err)
	}
	bodies := make([]string, len(out.Comments))
	for i, cm := range out.Comments {
		bodies[i] = cm.Body
	}
	return bodies, nil
}

// addLabel adds label to an existing ticket.
func (c *client) addLabel(ctx context.Context, key, label string) error {
	resp, err := c.jc.Issue.UpdateIssueWithContext(ctx, key, map[string]any{
		"update": map[string]any{"labels": []map[string]string{{"add": label}}},
	})
	if err != nil {
		return c.fail("label "+key, resp, err)
	}
	resp.Body.Close()
	return nil
}

// statusDone reports whether the ticket's status is in the done category.
func (c *client) statusDone(ctx context.Context, key string) (bool, error) {
	is, resp, err := c.jc.Issue.GetWithContext(ctx, key, &jira.GetQueryOptions{Fields: "status"})
	if err != nil {
		return false, c.fail("read status of "+key, resp, err)
	}
	return is.Fields != nil && is.Fields.Status != nil && is.Fields.Status.StatusCategory.Key == jira.StatusCategoryComplete, nil
}

// transition moves the ticket with the first of names (case-insensitive)
// that its workflow offers now, by the transition's id as Jira requires.
// When none is offered and the ticket is already where it should be (done
// or not), nothing is done; otherwise the error lists what is offered.
func (c *client) transition(ctx context.Context, key string, names []string, wantDone bool) error {
	ts, resp, err := c.jc.Issue.GetTransitionsWithContext(ctx, key)
	if err != nil {
		return c.fail("list transitions of "+key, resp, err)
	}
	for _, name := range names {
		for _, t := range ts {
			if strings.EqualFold(strings.TrimSpace(t.Name), strings.TrimSpace(name)) {
				resp, err := c.jc.Issue.DoTransitionWithContext(ctx, key, t.ID)
				if err != nil {
					return c.fail(fmt.Sprintf("transition %s with %q", key, t.Name), resp, err)
				}
				return nil
			}
		}
	}
	done, err := c.statusDone(ctx, key)
	if err != nil {
		return err
	}
	if done == wantDone {
		return nil
	}
	offered := make([]string, 0, len(ts))
	for _, t := range ts {
		offered = append(offered, strconv.Quote(t.Name))
	}
	setting := "VMTRIAGE_JIRA_RESOLVE_TRANSITIONS"
	if !wantDone {
		setting = "VMTRIAGE_JIRA_REOPEN_TRANSITIONS"
	}
	return &permanentError{msg: fmt.Sprintf("jira: cannot move %s: none of the transitions %s is offered from its status (offered: %s); add one of the offered names to %s",
		key, quoteAll(names), strings.Join(offered, ", "), setting)}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
