package inventory

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Team is a team that owns services, and where to reach it.
type Team struct {
	Name string `json:"name"`
	// SlackChannel is the channel ID (C0…) incidents of its services go to.
	SlackChannel string `json:"slack_channel,omitempty"`
	// SlackUsergroup is the user-group ID (S0…) mentioned when escalation
	// levels say so.
	SlackUsergroup string `json:"slack_usergroup,omitempty"`
	// JiraComponent and JiraAssignee go on tickets of its services.
	JiraComponent string `json:"jira_component,omitempty"`
	JiraAssignee  string `json:"jira_assignee,omitempty"`
}

// Service is an application running on one or more VMs, owned by a team.
type Service struct {
	Name string `json:"name"`
	Team string `json:"team,omitempty"`
}

// VM assigns a VM to the service it is an instance of.
type VM struct {
	ID      string `json:"id"`
	Service string `json:"service"`
}

// Document is what one source states: the shape of the inventory file and
// of POST /v1/inventory. Every list is optional.
type Document struct {
	Services []Service `json:"services"`
	Teams    []Team    `json:"teams"`
	VMs      []VM      `json:"vms"`
}

// Relation kinds and fields, as stored and as the history names them.
const (
	KindVM      = "vm"
	KindService = "service"
	KindTeam    = "team"

	FieldService        = "service"
	FieldTeam           = "team"
	FieldSlackChannel   = "slack_channel"
	FieldSlackUsergroup = "slack_usergroup"
	FieldJiraComponent  = "jira_component"
	FieldJiraAssignee   = "jira_assignee"
)

// teamFields lists a team's fields in order.
var teamFields = []string{FieldSlackChannel, FieldSlackUsergroup, FieldJiraComponent, FieldJiraAssignee}

// Problem is one thing wrong with inventory input: where (Line, when the
// input has lines; Field, a path like "vms[3].service" or a CSV column) and
// what.
type Problem struct {
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error refuses inventory input, listing every problem found. Nothing of
// the input is applied.
type Error struct {
	// File names the input (a path, or "request").
	File     string
	Problems []Problem
}

// Error lists the problems one per line: "inv.yaml:12: vms[3].service: …".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		fmt.Fprintf(&b, ": %s: %s", p.Field, p.Message)
	}
	return b.String()
}

// maxNameLen and maxTextLen bound names and free text, in characters.
const (
	maxNameLen = 200
	maxTextLen = 255
)

var (
	channelID   = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	usergroupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

// checkName says what is wrong with a VM, service or team name, or "".
func checkName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case utf8.RuneCountInString(s) > maxNameLen:
		return fmt.Sprintf("is longer than %d characters", maxNameLen)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("%q must not contain spaces or control characters", s)
		}
	}
	return ""
}

// checkField says what is wrong with a non-empty value of field, or "".
func checkField(field, v string) string {
	switch field {
	case FieldService, FieldTeam:
		return checkName(v)
	case FieldSlackChannel:
		if !channelID.MatchString(v) {
			return fmt.Sprintf("%q is not a Slack channel ID (like C0123ABCD: channel name → View channel details, at the bottom)", v)
		}
	case FieldSlackUsergroup:
		if !usergroupID.MatchString(v) {
			return fmt.Sprintf("%q is not a Slack user-group ID (like S0123ABCD)", v)
		}
	default:
		switch {
		case !utf8.ValidString(v):
			return "is not valid UTF-8"
		case utf8.RuneCountInString(v) > maxTextLen:
			return fmt.Sprintf("is longer than %d characters", maxTextLen)
		}
		for _, r := range v {
			if unicode.IsControl(r) {
				return "must not contain control characters"
			}
		}
	}
	return ""
}

// entry is one entry of parsed input, with where each field came from.
type entry struct {
	kind  string
	name  string
	path  string // "vms[3]" or "" for CSV
	line  int
	vals  map[string]string
	set   map[string]bool // fields explicitly present (API removals)
	lines map[string]int
}

func (e *entry) fieldPath(f string) string {
	if e.path == "" {
		return f
	}
	return e.path + "." + f
}

func (e *entry) fieldLine(f string) int {
	if l, ok := e.lines[f]; ok {
		return l
	}
	return e.line
}

// build validates entries and turns them into relations. A value given
// twice for one kind, name and field must agree. With removals, a field
// present but empty removes the relation (the API's way to hand a relation
// back to lower layers); otherwise an empty field states nothing.
func build(entries []entry, removals bool) ([]model.InventoryRelation, []Problem) {
	type key struct{ kind, name, field string }
	seen := map[key]struct {
		val  string
		line int
		path string
	}{}
	var (
		probs []Problem
		rels  []model.InventoryRelation
	)
	for i := range entries {
		e := &entries[i]
		nameField := "name"
		if e.kind == KindVM {
			nameField = "id"
		}
		if msg := checkName(e.name); msg != "" {
			probs = append(probs, Problem{Line: e.fieldLine(nameField), Field: e.fieldPath(nameField), Message: msg})
			continue
		}
		fields := teamFields
		switch e.kind {
		case KindVM:
			fields = []string{FieldService}
			if e.vals[FieldService] == "" && !(removals && e.set[FieldService]) {
				probs = append(probs, Problem{Line: e.fieldLine(FieldService), Field: e.fieldPath(FieldService), Message: "is required: the service this VM is an instance of"})
				continue
			}
		case KindService:
			fields = []string{FieldTeam}
		}
		for _, f := range fields {
			v := e.vals[f]
			if v == "" && !(removals && e.set[f]) {
				continue
			}
			if v != "" {
				if msg := checkField(f, v); msg != "" {
					probs = append(probs, Problem{Line: e.fieldLine(f), Field: e.fieldPath(f), Message: msg})
					continue
				}
			}
			k := key{e.kind, e.name, f}
			if prev, ok := seen[k]; ok {
				if prev.val != v {
					where := prev.path
					if prev.line > 0 {
						where = fmt.Sprintf("line %d", prev.line)
					}
					probs = append(probs, Problem{Line: e.fieldLine(f), Field: e.fieldPath(f),
						Message: fmt.Sprintf("%s %s has %s %q here but %q at %s", e.kind, e.name, f, v, prev.val, where)})
				}
				continue
			}
			seen[k] = struct {
				val  string
				line int
				path string
			}{v, e.fieldLine(f), e.fieldPath(f)}
			rels = append(rels, model.InventoryRelation{Kind: e.kind, Name: e.name, Field: f, Value: v})
		}
	}
	return rels, probs
}

// entriesOf turns a decoded Document into entries without lines.
func entriesOf(d *Document) []entry {
	out := make([]entry, 0, len(d.Services)+len(d.Teams)+len(d.VMs))
	for i, s := range d.Services {
		out = append(out, entry{kind: KindService, name: strings.TrimSpace(s.Name), path: fmt.Sprintf("services[%d]", i),
			vals: map[string]string{FieldTeam: strings.TrimSpace(s.Team)}})
	}
	for i, t := range d.Teams {
		out = append(out, entry{kind: KindTeam, name: strings.TrimSpace(t.Name), path: fmt.Sprintf("teams[%d]", i),
			vals: map[string]string{
				FieldSlackChannel: strings.TrimSpace(t.SlackChannel), FieldSlackUsergroup: strings.TrimSpace(t.SlackUsergroup),
				FieldJiraComponent: strings.TrimSpace(t.JiraComponent), FieldJiraAssignee: strings.TrimSpace(t.JiraAssignee),
			}})
	}
	for i, v := range d.VMs {
		out = append(out, entry{kind: KindVM, name: strings.TrimSpace(v.ID), path: fmt.Sprintf("vms[%d]", i),
			vals: map[string]string{FieldService: strings.TrimSpace(v.Service)}})
	}
	return out
}

// Relations validates d as a whole and returns its relations, or an *Error
// naming every problem (file names the input in the error).
func (d *Document) Relations(file string) ([]model.InventoryRelation, error) {
	rels, probs := build(entriesOf(d), false)
	if len(probs) > 0 {
		return nil, &Error{File: file, Problems: probs}
	}
	return rels, nil
}
