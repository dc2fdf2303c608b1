// Package jiratest is a fake Jira REST API (v2) on httptest, strict enough
// to catch what real Jira refuses: it checks authentication, validates
// issue payloads the way Jira does (required project, issue type and
// summary, 255-character summary and labels, labels without spaces, known
// priorities, components and assignees), answers errors in Jira's
// {"errorMessages":[...],"errors":{...}} shape, runs transitions by id only,
// parses the JQL it is sent (quoted values, AND, ORDER BY), and serves
// Cloud's /rest/api/2/search/jql or Server's /rest/api/2/search depending
// on the flavour (the other one answers like the real product: 410 on
// Cloud, 404 on Server). Faults (429, 5xx, even after the write was done)
// are injected per request to test retries.
package jiratest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/clock"
)

// Jira's limits, in characters.
const (
	MaxSummary = 255
	MaxLabel   = 255
	MaxText    = 32767
)

// Statuses of the fake workflow and their categories.
const (
	StatusToDo       = "To Do"
	StatusInProgress = "In Progress"
	StatusDone       = "Done"
)

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	// Cloud serves /rest/api/2/search/jql (and /rest/api/3/search/jql) and
	// answers 410 Gone on /rest/api/2/search, as Jira Cloud does; otherwise
	// the server behaves like Server/Data Center: /rest/api/2/search works
	// and /search/jql is 404.
	Cloud bool
	// User and Token are the credentials expected: Basic user:token when
	// User is set (Cloud), Bearer token otherwise (a personal access token).
	User, Token string
	// Projects are the project keys (default OPS).
	Projects []string
	// IssueTypes (default Incident, Task, Bug), Priorities (default
	// Highest, High, Medium, Low, Lowest), Components (default none) and
	// Assignees (default none; account ids on Cloud, names on Server) are
	// what the server accepts.
	IssueTypes, Priorities, Components, Assignees []string
	// ResolveName and ReopenName name the transitions to Done (default
	// "Done") and back to To Do (default "Reopen").
	ResolveName, ReopenName string
	// Clock stamps created and resolution dates (default the wall clock).
	Clock clock.Clock
}

// Fault is what an injected failure answers.
type Fault struct {
	// Status is the HTTP status (429, 502, 503, ...).
	Status int
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// AfterCommit performs the request first and only then fails it, like
	// a proxy timing out on a slow but successful write.
	AfterCommit bool
}

// Request is one request the server received, numbered from 1.
type Request struct {
	N      int
	Method string
	Path   string
	Query  string
	Body   string
}

// Issue is an issue as the fake stores it.
type Issue struct {
	ID, Key     string
	Project     string
	Type        string
	Summary     string
	Description string
	Priority    string
	Assignee    string
	Components  []string
	Labels      []string
	Status      string
	Comments    []string
	// Transitions lists the names of the transitions done, in order.
	Transitions []string
	Created     time.Time
	Resolved    time.Time
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give the client.
	URL string

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	issues   []*Issue
	requests []Request
	fault    func(Request) *Fault
	seq      int
}

// NewServer starts a fake Jira; Close it when done.
func NewServer(opts Options) *Server {
	if len(opts.Projects) == 0 {
		opts.Projects = []string{"OPS"}
	}
	if len(opts.IssueTypes) == 0 {
		opts.IssueTypes = []string{"Incident", "Task", "Bug"}
	}
	if len(opts.Priorities) == 0 {
		opts.Priorities = []string{"Highest", "High", "Medium", "Low", "Lowest"}
	}
	if opts.ResolveName == "" {
		opts.ResolveName = "Done"
	}
	if opts.ReopenName == "" {
		opts.ReopenName = "Reopen"
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	s := &Server{opts: opts}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// SetFault installs f, asked before every request; a non-nil Fault makes
// the request fail. nil removes it.
func (s *Server) SetFault(f func(Request) *Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Issues returns copies of every issue, in creation order.
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Issue, len(s.issues))
	for i, is := range s.issues {
		out[i] = copyIssue(is)
	}
	return out
}

// Issue returns a copy of the issue with key.
func (s *Server) Issue(key string) (Issue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if is := s.find(key); is != nil {
		return copyIssue(is), true
	}
	return Issue{}, false
}

// SetStatus moves an issue to status by hand, as a person in Jira would.
func (s *Server) SetStatus(key, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if is := s.find(key); is != nil {
		s.setStatus(is, status)
	}
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func copyIssue(is *Issue) Issue {
	c := *is
	c.Components = slices.Clone(is.Components)
	c.Labels = slices.Clone(is.Labels)
	c.Comments = slices.Clone(is.Comments)
	c.Transitions = slices.Clone(is.Transitions)
	return c
}

func (s *Server) find(key string) *Issue {
	for _, is := range s.issues {
		if is.Key == key || is.ID == key {
			return is
		}
	}
	return nil
}

func (s *Server) setStatus(is *Issue, status string) {
	is.Status = status
	if status == StatusDone {
		is.Resolved = s.opts.Clock.Now()
	} else {
		is.Resolved = time.Time{}
	}
}

// apiError is Jira's error body.
type apiError struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, messages []string, fields map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fields == nil {
		fields = map[string]string{}
	}
	writeJSON(w, status, apiError{ErrorMessages: messages, Errors: fields})
}

// recorder captures a response so that an AfterCommit fault can replace it.
type recorder struct {
	h      http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(status int)      { r.status = status }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body := make([]byte, 0, 512)
	if r.Body != nil {
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
	}
	s.mu.Lock()
	req := Request{N: len(s.requests) + 1, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body)}
	s.requests = append(s.requests, req)
	var f *Fault
	if s.fault != nil {
		f = s.fault(req)
	}
	s.mu.Unlock()

	if f != nil && !f.AfterCommit {
		writeFault(w, f)
		return
	}
	if !s.authorized(r) {
		fail(w, http.StatusUnauthorized, []string{"You are not authenticated. Authentication required to perform this operation."}, nil)
		return
	}
	if f != nil {
		s.route(&recorder{h: http.Header{}}, r, body)
		writeFault(w, f)
		return
	}
	s.route(w, r, body)
}

func writeFault(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Status == http.StatusTooManyRequests {
		fail(w, f.Status, []string{"Rate limit exceeded."}, nil)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte("<html><body>" + http.StatusText(f.Status) + "</body></html>"))
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if s.opts.User != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.opts.User+":"+s.opts.Token))
		return h == want
	}
	return h == "Bearer "+s.opts.Token
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/rest/api/2/issue":
		s.create(w, body)
	case r.Method == http.MethodGet && (path == "/rest/api/2/search/jql" || path == "/rest/api/3/search/jql"):
		if !s.opts.Cloud {
			fail(w, http.StatusNotFound, []string{"null for uri: " + path}, nil)
			return
		}
		s.search(w, r, true)
	case r.Method == http.MethodGet && path == "/rest/api/2/search":
		if s.opts.Cloud {
			fail(w, http.StatusGone, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"}, nil)
			return
		}
		s.search(w, r, false)
	case strings.HasPrefix(path, "/rest/api/2/issue/"):
		rest := strings.TrimPrefix(path, "/rest/api/2/issue/")
		key, sub, _ := strings.Cut(rest, "/")
		s.issueRoute(w, r, key, sub, body)
	default:
		fail(w, http.StatusNotFound, []string{"null for uri: " + path}, nil)
	}
}

func (s *Server) issueRoute(w http.ResponseWriter, r *http.Request, key, sub string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.find(key)
	if is == nil {
		fail(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
		return
	}
	switch {
	case sub == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.issueJSON(is, fieldList(r.URL.Query().Get("fields"))))
	case sub == "" && r.Method == http.MethodPut:
		s.update(w, is, body)
	case sub == "comment" && r.Method == http.MethodPost:
		s.comment(w, is, body)
	case sub == "comment" && r.Method == http.MethodGet:
		list := make([]map[string]string, len(is.Comments))
		for i, c := range is.Comments {
			list[i] = map[string]string{"id": strconv.Itoa(20001 + i), "body": c}
		}
		writeJSON(w, http.StatusOK, map[string]any{"startAt": 0, "maxResults": len(list), "total": len(list), "comments": list})
	case sub == "transitions" && r.Method == http.MethodGet:
		var ts []map[string]any
		for _, t := range s.transitions(is) {
			ts = append(ts, map[string]any{"id": t.id, "name": t.name,
				"to": map[string]any{"name": t.to, "statusCategory": map[string]any{"key": category(t.to)}}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": ts})
	case sub == "transitions" && r.Method == http.MethodPost:
		s.transition(w, is, body)
	default:
		fail(w, http.StatusMethodNotAllowed, []string{r.Method + " is not supported on " + r.URL.Path}, nil)
	}
}

// --- create ----------------------------------------------------------------

type named struct {
	Key       string `json:"key"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	AccountID string `json:"accountId"`
}

// knownFields are the fields the create screen has.
var knownFields = []string{"project", "issuetype", "summary", "description", "labels", "priority", "components", "assignee"}

func (s *Server) create(w http.ResponseWriter, body []byte) {
	var doc struct {
		Fields map[string]json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		fail(w, http.StatusBadRequest, []string{"Unexpected character in the request body: " + err.Error()}, nil)
		return
	}
	errs := map[string]string{}
	for name := range doc.Fields {
		if !slices.Contains(knownFields, name) {
			errs[name] = fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", name)
		}
	}
	var project, itype named
	var summary, description string
	var labels []string
	var priority *named
	var components []named
	var assignee *named
	decode := func(name string, v any) bool {
		raw, ok := doc.Fields[name]
		if !ok {
			return false
		}
		if err := json.Unmarshal(raw, v); err != nil {
			errs[name] = "Field '" + name + "' has an invalid value: " + err.Error()
			return false
		}
		return true
	}
	decode("project", &project)
	decode("issuetype", &itype)
	decode("summary", &summary)
	decode("description", &description)
	decode("labels", &labels)
	decode("priority", &priority)
	decode("components", &components)
	decode("assignee", &assignee)

	if !slices.Contains(s.opts.Projects, project.Key) {
		errs["project"] = "valid project is required"
	}
	if !slices.Contains(s.opts.IssueTypes, itype.Name) {
		errs["issuetype"] = "valid issue type is required"
	}
	switch {
	case strings.TrimSpace(summary) == "":
		errs["summary"] = "You must specify a summary of the issue."
	case utf8.RuneCountInString(summary) > MaxSummary:
		errs["summary"] = "Summary must be less than 255 characters."
	case strings.ContainsAny(summary, "\r\n"):
		errs["summary"] = "The summary is invalid because it contains newline characters."
	}
	if utf8.RuneCountInString(description) > MaxText {
		errs["description"] = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
	}
	if msg := checkLabels(labels); msg != "" {
		errs["labels"] = msg
	}
	if priority != nil && !slices.Contains(s.opts.Priorities, priority.Name) {
		errs["priority"] = "Specify a valid 'id' or 'name' for Priority"
	}
	for _, c := range components {
		if !slices.Contains(s.opts.Components, c.Name) {
			errs["components"] = fmt.Sprintf("Component name '%s' is not valid", c.Name)
		}
	}
	who := ""
	if assignee != nil {
		who = assignee.Name
		if s.opts.Cloud {
			who = assignee.AccountID
			if assignee.Name != "" {
				errs["assignee"] = "'name' is not supported on Jira Cloud; use 'accountId'"
			}
		}
		if !slices.Contains(s.opts.Assignees, who) {
			errs["assignee"] = fmt.Sprintf("User '%s' cannot be assigned issues.", who)
		}
	}
	if len(errs) > 0 {
		fail(w, http.StatusBadRequest, nil, errs)
		return
	}
	s.mu.Lock()
	s.seq++
	is := &Issue{
		ID: strconv.Itoa(10000 + s.seq), Key: project.Key + "-" + strconv.Itoa(s.seq),
		Project: project.Key, Type: itype.Name, Summary: summary, Description: description,
		Labels: labels, Assignee: who, Status: StatusToDo, Created: s.opts.Clock.Now(),
	}
	if priority != nil {
		is.Priority = priority.Name
	}
	for _, c := range components {
		is.Components = append(is.Components, c.Name)
	}
	s.issues = append(s.issues, is)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"id": is.ID, "key": is.Key, "self": s.URL + "/rest/api/2/issue/" + is.ID})
}

func checkLabels(labels []string) string {
	for _, l := range labels {
		switch {
		case l == "":
			return "Labels cannot be empty."
		case strings.IndexFunc(l, unicode.IsSpace) >= 0:
			return fmt.Sprintf("The label '%s' contains spaces which is invalid.", l)
		case utf8.RuneCountInString(l) > MaxLabel:
			return "The label must not exceed 255 characters."
		}
	}
	return ""
}

// --- update, comment, transitions ------------------------------------------

func (s *Server) update(w http.ResponseWriter, is *Issue, body []byte) {
	var doc struct {
		Update map[string][]map[string]json.RawMessage `json:"update"`
		Fields map[string]json.RawMessage              `json:"fields"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		fail(w, http.StatusBadRequest, []string{"Unexpected character in the request body: " + err.Error()}, nil)
		return
	}
	if len(doc.Fields) > 0 {
		fail(w, http.StatusBadRequest, nil, map[string]string{"fields": "this fake only supports update.labels"})
		return
	}
	for field, ops := range doc.Update {
		if field != "labels" {
			fail(w, http.StatusBadRequest, nil, map[string]string{field: fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", field)})
			return
		}
		for _, op := range ops {
			for verb, raw := range op {
				var l string
				if err := json.Unmarshal(raw, &l); err != nil || (verb != "add" && verb != "remove") {
					fail(w, http.StatusBadRequest, nil, map[string]string{"labels": "invalid label operation " + verb})
					return
				}
				if msg := checkLabels([]string{l}); msg != "" {
					fail(w, http.StatusBadRequest, nil, map[string]string{"labels": msg})
					return
				}
				if verb == "add" && !slices.Contains(is.Labels, l) {
					is.Labels = append(is.Labels, l)
				}
				if verb == "remove" {
					is.Labels = slices.DeleteFunc(is.Labels, func(x string) bool { return x == l })
				}
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) comment(w http.ResponseWriter, is *Issue, body []byte) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		fail(w, http.StatusBadRequest, []string{"Unexpected character in the request body: " + err.Error()}, nil)
		return
	}
	for k, v := range doc {
		switch k {
		case "body":
		case "visibility":
			// Cloud refuses an empty visibility, which go-jira v1's
			// Comment type always sends.
			var vis struct{ Type, Value string }
			if json.Unmarshal(v, &vis) != nil || vis.Type == "" || vis.Value == "" {
				fail(w, http.StatusBadRequest, nil, map[string]string{"commentLevel": "You are currently not a member of the project role: ."})
				return
			}
		default:
			fail(w, http.StatusBadRequest, []string{fmt.Sprintf("Unrecognized field \"%s\"", k)}, nil)
			return
		}
	}
	var text string
	if err := json.Unmarshal(doc["body"], &text); err != nil || strings.TrimSpace(text) == "" {
		fail(w, http.StatusBadRequest, nil, map[string]string{"comment": "Comment body can not be empty!"})
		return
	}
	if utf8.RuneCountInString(text) > MaxText {
		fail(w, http.StatusBadRequest, nil, map[string]string{"comment": "The entered text is too long. It exceeds the allowed limit of 32,767 characters."})
		return
	}
	is.Comments = append(is.Comments, text)
	writeJSON(w, http.StatusCreated, map[string]any{"id": strconv.Itoa(20000 + len(is.Comments)), "body": text})
}

type transition struct{ id, name, to string }

func (s *Server) transitions(is *Issue) []transition {
	if is.Status == StatusDone {
		return []transition{{"31", s.opts.ReopenName, StatusToDo}}
	}
	out := []transition{{"21", s.opts.ResolveName, StatusDone}}
	if is.Status == StatusToDo {
		out = append([]transition{{"11", "Start Progress", StatusInProgress}}, out...)
	}
	return out
}

func category(status string) string {
	switch status {
	case StatusDone:
		return "done"
	case StatusInProgress:
		return "indeterminate"
	}
	return "new"
}

func (s *Server) transition(w http.ResponseWriter, is *Issue, body []byte) {
	var doc struct {
		Transition *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"transition"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		fail(w, http.StatusBadRequest, []string{"Unexpected character in the request body: " + err.Error()}, nil)
		return
	}
	if doc.Transition == nil || doc.Transition.ID == "" {
		fail(w, http.StatusBadRequest, []string{"Missing 'transition' identifier"}, nil)
		return
	}
	for _, t := range s.transitions(is) {
		if t.id == doc.Transition.ID {
			s.setStatus(is, t.to)
			is.Transitions = append(is.Transitions, t.name)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	fail(w, http.StatusBadRequest, nil, map[string]string{"transition": fmt.Sprintf("Transition id '%s' is not valid for this issue.", doc.Transition.ID)})
}

// --- search ------------------------------------------------------------------

func fieldList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

const jiraTime = "2006-01-02T15:04:05.000-0700"

func (s *Server) issueJSON(is *Issue, fields []string) map[string]any {
	out := map[string]any{"id": is.ID, "key": is.Key, "self": s.URL + "/rest/api/2/issue/" + is.ID}
	if len(fields) == 0 {
		return out
	}
	f := map[string]any{}
	for _, name := range fields {
		switch name {
		case "summary":
			f["summary"] = is.Summary
		case "labels":
			f["labels"] = is.Labels
		case "status":
			f["status"] = map[string]any{"name": is.Status, "statusCategory": map[string]any{"key": category(is.Status)}}
		case "created":
			f["created"] = is.Created.Format(jiraTime)
		case "resolutiondate":
			if is.Resolved.IsZero() {
				f["resolutiondate"] = nil
			} else {
				f["resolutiondate"] = is.Resolved.Format(jiraTime)
			}
		}
	}
	out["fields"] = f
	return out
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, cloud bool) {
	q := r.URL.Query()
	query, err := parseJQL(q.Get("jql"))
	if err != nil {
		fail(w, http.StatusBadRequest, []string{"Error in the JQL Query: " + err.Error()}, nil)
		return
	}
	fields := fieldList(q.Get("fields"))
	if !cloud && len(fields) == 0 {
		fields = []string{"summary", "labels", "status", "created", "resolutiondate"}
	}
	s.mu.Lock()
	var hits []*Issue
	for _, is := range s.issues {
		if query.match(is) {
			hits = append(hits, is)
		}
	}
	if query.orderBy == "created" {
		slices.SortStableFunc(hits, func(a, b *Issue) int {
			c := a.Created.Compare(b.Created)
			if c == 0 {
				c = strings.Compare(a.ID, b.ID)
			}
			if query.desc {
				c = -c
			}
			return c
		})
	}
	list := make([]map[string]any, 0, len(hits))
	for _, is := range hits {
		list = append(list, s.issueJSON(is, fields))
	}
	s.mu.Unlock()
	if n, _ := strconv.Atoi(q.Get("maxResults")); n > 0 && len(list) > n {
		list = list[:n]
	}
	if cloud {
		writeJSON(w, http.StatusOK, map[string]any{"issues": list, "isLast": true})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"startAt": 0, "maxResults": 50, "total": len(list), "issues": list})
}
