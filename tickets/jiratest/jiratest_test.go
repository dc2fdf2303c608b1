package jiratest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

// call sends one request with the fake's expected credentials.
func call(t *testing.T, s *jiratest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("u@example.com", "tok-1234")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(b, &doc)
	return resp.StatusCode, doc
}

func newServer(t *testing.T, cloud bool) *jiratest.Server {
	s := jiratest.NewServer(jiratest.Options{Cloud: cloud, User: "u@example.com", Token: "tok-1234", Components: []string{"Compute"}})
	t.Cleanup(s.Close)
	return s
}

func TestCreateValidation(t *testing.T) {
	long := strings.Repeat("ü", 256)
	tests := []struct {
		name   string
		fields string
		status int
		field  string // expected key in "errors"
	}{
		{"valid", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","labels":["a"],"priority":{"name":"High"},"components":[{"name":"Compute"}]}`, 201, ""},
		{"no project", `{"issuetype":{"name":"Incident"},"summary":"s"}`, 400, "project"},
		{"unknown issue type", `{"project":{"key":"OPS"},"issuetype":{"name":"Outage"},"summary":"s"}`, 400, "issuetype"},
		{"no summary", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"}}`, 400, "summary"},
		{"summary of 256 characters", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"` + long + `"}`, 400, "summary"},
		{"summary of 255 characters (510 bytes)", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"` + long[2:] + `"}`, 201, ""},
		{"summary with newline", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"a\nb"}`, 400, "summary"},
		{"label with space", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","labels":["a b"]}`, 400, "labels"},
		{"label too long", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","labels":["` + strings.Repeat("x", 256) + `"]}`, 400, "labels"},
		{"unknown priority", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","priority":{"name":"P0"}}`, 400, "priority"},
		{"unknown component", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","components":[{"name":"Storage"}]}`, 400, "components"},
		{"unknown field", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","customfield_1":"x"}`, 400, "customfield_1"},
		{"assignee by name on Cloud", `{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","assignee":{"name":"jdoe"}}`, 400, "assignee"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, true)
			status, doc := call(t, s, "POST", "/rest/api/2/issue", `{"fields":`+tc.fields+`}`)
			if status != tc.status {
				t.Fatalf("status %d; want %d (%v)", status, tc.status, doc)
			}
			if tc.field == "" {
				if doc["key"] != "OPS-1" {
					t.Fatalf("created %v", doc)
				}
				return
			}
			errs, _ := doc["errors"].(map[string]any)
			if _, ok := errs[tc.field]; !ok || doc["errorMessages"] == nil {
				t.Fatalf("body %v lacks errors.%s or errorMessages (Jira's shape)", doc, tc.field)
			}
		})
	}
}

func TestSearchEndpointsAndJQL(t *testing.T) {
	tests := []struct {
		name   string
		cloud  bool
		path   string
		jql    string
		status int
		hits   int
	}{
		{"cloud search/jql", true, "/rest/api/2/search/jql", `project = "OPS" AND labels = "vmtriage-x1"`, 200, 1},
		{"cloud v3 search/jql", true, "/rest/api/3/search/jql", `project = "OPS" AND labels = "vmtriage-x1"`, 200, 1},
		{"cloud old search is gone", true, "/rest/api/2/search", `project = "OPS"`, 410, 0},
		{"server search", false, "/rest/api/2/search", `project = OPS AND labels = "vmtriage-x1" ORDER BY created DESC`, 200, 1},
		{"server has no search/jql", false, "/rest/api/2/search/jql", `project = "OPS"`, 404, 0},
		{"unquoted hyphen refused", true, "/rest/api/2/search/jql", `project = "OPS" AND labels = vmtriage-x1`, 400, 0},
		{"escaped quote", true, "/rest/api/2/search/jql", `project = "OPS" AND labels = "vmtriage-\"x1"`, 200, 0},
		{"unclosed quote", true, "/rest/api/2/search/jql", `project = "OPS`, 400, 0},
		{"bad escape", true, "/rest/api/2/search/jql", `project = "O\PS"`, 400, 0},
		{"other label", true, "/rest/api/2/search/jql", `labels = "vmtriage-x2"`, 200, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.cloud)
			if st, _ := call(t, s, "POST", "/rest/api/2/issue", `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s","labels":["vmtriage-x1"]}}`); st != 201 {
				t.Fatalf("create: %d", st)
			}
			status, doc := call(t, s, "GET", tc.path+"?fields=labels,status&jql="+url.QueryEscape(tc.jql), "")
			if status != tc.status {
				t.Fatalf("status %d; want %d (%v)", status, tc.status, doc)
			}
			if status != 200 {
				if doc["errorMessages"] == nil {
					t.Fatalf("error body %v is not Jira's shape", doc)
				}
				return
			}
			issues, _ := doc["issues"].([]any)
			if len(issues) != tc.hits {
				t.Fatalf("%d hits; want %d", len(issues), tc.hits)
			}
		})
	}
}

func TestCommentsAndTransitions(t *testing.T) {
	s := newServer(t, true)
	call(t, s, "POST", "/rest/api/2/issue", `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s"}}`)
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"comment", "POST", "/rest/api/2/issue/OPS-1/comment", `{"body":"hello"}`, 201},
		// go-jira v1's AddComment sends these; Cloud refuses them.
		{"comment with empty visibility", "POST", "/rest/api/2/issue/OPS-1/comment", `{"body":"x","visibility":{}}`, 400},
		{"comment with author", "POST", "/rest/api/2/issue/OPS-1/comment", `{"body":"x","author":{}}`, 400},
		{"empty comment", "POST", "/rest/api/2/issue/OPS-1/comment", `{"body":" "}`, 400},
		{"transition by name refused", "POST", "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"name":"Done"}}`, 400},
		{"transition not offered", "POST", "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"id":"31"}}`, 400},
		{"transition by id", "POST", "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"id":"21"},"fields":{}}`, 204},
		{"reopen by id", "POST", "/rest/api/2/issue/OPS-1/transitions", `{"transition":{"id":"31"}}`, 204},
		{"unknown issue", "POST", "/rest/api/2/issue/OPS-9/comment", `{"body":"x"}`, 404},
		{"label with space", "PUT", "/rest/api/2/issue/OPS-1", `{"update":{"labels":[{"add":"a b"}]}}`, 400},
		{"label", "PUT", "/rest/api/2/issue/OPS-1", `{"update":{"labels":[{"add":"vmtriage-inc-1"}]}}`, 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if status, doc := call(t, s, tc.method, tc.path, tc.body); status != tc.status {
				t.Fatalf("status %d; want %d (%v)", status, tc.status, doc)
			}
		})
	}
	is, _ := s.Issue("OPS-1")
	if len(is.Comments) != 1 || is.Status != jiratest.StatusToDo || strings.Join(is.Transitions, ",") != "Done,Reopen" || len(is.Labels) != 1 {
		t.Fatalf("issue = %+v", is)
	}
}

func TestAuthentication(t *testing.T) {
	s := newServer(t, true)
	req, _ := http.NewRequest("GET", s.URL+"/rest/api/2/issue/OPS-1", nil)
	req.SetBasicAuth("u@example.com", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong token: status %d; want 401", resp.StatusCode)
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t, true)
	s.SetFault(func(r jiratest.Request) *jiratest.Fault {
		if r.N == 1 {
			return &jiratest.Fault{Status: 429, RetryAfter: "3"}
		}
		return &jiratest.Fault{Status: 502, AfterCommit: true}
	})
	create := `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Incident"},"summary":"s"}}`
	if st, _ := call(t, s, "POST", "/rest/api/2/issue", create); st != 429 || len(s.Issues()) != 0 {
		t.Fatalf("429: status %d, %d issues", st, len(s.Issues()))
	}
	if st, _ := call(t, s, "POST", "/rest/api/2/issue", create); st != 502 || len(s.Issues()) != 1 {
		t.Fatalf("502 after commit: status %d, %d issues; want the issue created", st, len(s.Issues()))
	}
}
