package inventory

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Parse reads an inventory file, YAML or CSV by its extension (.yaml,
// .yml, .csv), and returns its relations. Any problem refuses the whole
// file with an *Error naming each problem's line and field.
func Parse(name string, data []byte) ([]model.InventoryRelation, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return ParseCSV(name, data)
	case ".yaml", ".yml":
		return ParseYAML(name, data)
	}
	return nil, &Error{File: name, Problems: []Problem{{Field: "file", Message: "unknown format: the name must end in .yaml, .yml or .csv"}}}
}

// yamlKeys are the allowed keys of each entry kind in YAML.
var yamlKeys = map[string][]string{
	"services": {"name", FieldTeam},
	"teams":    append([]string{"name"}, teamFields...),
	"vms":      {"id", FieldService},
}

var kindOfList = map[string]string{"services": KindService, "teams": KindTeam, "vms": KindVM}

// ParseYAML reads the YAML form:
//
//	teams:
//	  - {name: team-pay, slack_channel: C0PAY, slack_usergroup: S0PAY, jira_component: Payments, jira_assignee: pay-oncall}
//	services:
//	  - {name: payments-api, team: team-pay}
//	vms:
//	  - {id: vm-0042, service: payments-api}
//
// Unknown keys, a value that is not a plain scalar, aliases and a value
// given twice with different contents are errors.
func ParseYAML(name string, data []byte) ([]model.InventoryRelation, error) {
	fail := func(line int, field, msg string) error {
		return &Error{File: name, Problems: []Problem{{Line: line, Field: field, Message: msg}}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file: no relations
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
			_, msg, _ = strings.Cut(msg, ": ")
		}
		return nil, fail(line, "file", "not valid YAML: "+msg)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fail(extra.Line, "file", "holds more than one YAML document")
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "file", "must be a mapping with the keys services, teams and vms")
	}
	var (
		entries []entry
		probs   []Problem
	)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		kind, ok := kindOfList[k.Value]
		if !ok {
			probs = append(probs, Problem{Line: k.Line, Field: k.Value, Message: "unknown key (allowed: services, teams, vms)"})
			continue
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			probs = append(probs, Problem{Line: v.Line, Field: k.Value, Message: "must be a list"})
			continue
		}
		for j, item := range v.Content {
			path := fmt.Sprintf("%s[%d]", k.Value, j)
			if item.Kind != yaml.MappingNode {
				probs = append(probs, Problem{Line: item.Line, Field: path, Message: "must be a mapping"})
				continue
			}
			e := entry{kind: kind, path: path, line: item.Line, vals: map[string]string{}, lines: map[string]int{}}
			bad := false
			for m := 0; m+1 < len(item.Content); m += 2 {
				fk, fv := item.Content[m], item.Content[m+1]
				if !contains(yamlKeys[k.Value], fk.Value) {
					probs = append(probs, Problem{Line: fk.Line, Field: path + "." + fk.Value,
						Message: "unknown key (allowed: " + strings.Join(yamlKeys[k.Value], ", ") + ")"})
					bad = true
					continue
				}
				if _, dup := e.lines[fk.Value]; dup {
					probs = append(probs, Problem{Line: fk.Line, Field: path + "." + fk.Value, Message: "is given twice"})
					bad = true
					continue
				}
				if fv.Kind != yaml.ScalarNode || fv.Alias != nil {
					probs = append(probs, Problem{Line: fv.Line, Field: path + "." + fk.Value, Message: "must be a plain value, not a list or mapping"})
					bad = true
					continue
				}
				val := fv.Value
				if fv.Tag == "!!null" {
					val = ""
				}
				e.lines[fk.Value] = fv.Line
				if fk.Value == "name" || fk.Value == "id" {
					e.name = strings.TrimSpace(val)
				} else {
					e.vals[fk.Value] = strings.TrimSpace(val)
				}
			}
			if !bad {
				entries = append(entries, e)
			}
		}
	}
	rels, more := build(entries, false)
	probs = append(probs, more...)
	if len(probs) > 0 {
		return nil, &Error{File: name, Problems: probs}
	}
	return rels, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// csvColumns are the columns the CSV form may have.
var csvColumns = []string{"vm", FieldService, FieldTeam, FieldSlackChannel, FieldSlackUsergroup, FieldJiraComponent, FieldJiraAssignee}

// ParseCSV reads the CSV form, the flat export most CMDBs give: a header
// naming some of the columns vm, service, team, slack_channel,
// slack_usergroup, jira_component and jira_assignee, then one row per VM
// (or per service or team, leaving vm empty). A row states the VM's
// service, the service's team and the team's contacts; repeating a
// service or team on many rows is fine as long as the rows agree. Lines
// starting with # are comments.
func ParseCSV(name string, data []byte) ([]model.InventoryRelation, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff") // a spreadsheet's BOM
	line, _ := r.FieldPos(0)
	var probs []Problem
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case !contains(csvColumns, h):
			probs = append(probs, Problem{Line: line, Field: fmt.Sprintf("column %d", i+1),
				Message: fmt.Sprintf("unknown column %q (allowed: %s)", h, strings.Join(csvColumns, ", "))})
		case col[h] != 0:
			probs = append(probs, Problem{Line: line, Field: h, Message: "column is given twice"})
		default:
			col[h] = i + 1
		}
	}
	if len(probs) > 0 {
		return nil, &Error{File: name, Problems: probs}
	}
	if col[FieldService] == 0 && col[FieldTeam] == 0 {
		return nil, &Error{File: name, Problems: []Problem{{Line: line, Field: "header", Message: "needs a service or a team column"}}}
	}
	get := func(rec []string, c string) string {
		if i := col[c]; i > 0 && i <= len(rec) {
			return strings.TrimSpace(rec[i-1])
		}
		return ""
	}
	var entries []entry
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := r.FieldPos(0)
		vm, svc, team := get(rec, "vm"), get(rec, FieldService), get(rec, FieldTeam)
		if vm != "" || (col["vm"] > 0 && svc == "" && team == "") {
			entries = append(entries, entry{kind: KindVM, name: vm, line: line, vals: map[string]string{FieldService: svc}})
		}
		if svc != "" && team != "" {
			entries = append(entries, entry{kind: KindService, name: svc, line: line, vals: map[string]string{FieldTeam: team}})
		}
		vals := map[string]string{}
		for _, f := range teamFields {
			if v := get(rec, f); v != "" {
				vals[f] = v
			}
		}
		if len(vals) > 0 {
			if team == "" {
				probs = append(probs, Problem{Line: line, Field: FieldTeam, Message: "is required on a row that gives a team's contacts"})
				continue
			}
			entries = append(entries, entry{kind: KindTeam, name: team, line: line, vals: vals})
		}
	}
	rels, more := build(entries, false)
	probs = append(probs, more...)
	if len(probs) > 0 {
		return nil, &Error{File: name, Problems: probs}
	}
	return rels, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Problems: []Problem{{Line: pe.Line, Field: fmt.Sprintf("column %d", pe.Column), Message: pe.Err.Error()}}}
	}
	return &Error{File: name, Problems: []Problem{{Field: "file", Message: err.Error()}}}
}

// pushTeam, pushService and pushVM are the API's entries: a field present
// with an empty value removes that relation from the API's layer, so the
// file (or a lower source) decides again; an absent field changes nothing.
type (
	pushTeam struct {
		Name           string  `json:"name"`
		SlackChannel   *string `json:"slack_channel"`
		SlackUsergroup *string `json:"slack_usergroup"`
		JiraComponent  *string `json:"jira_component"`
		JiraAssignee   *string `json:"jira_assignee"`
	}
	pushService struct {
		Name string  `json:"name"`
		Team *string `json:"team"`
	}
	pushVM struct {
		ID      string  `json:"id"`
		Service *string `json:"service"`
	}
	pushDoc struct {
		Services []pushService `json:"services"`
		Teams    []pushTeam    `json:"teams"`
		VMs      []pushVM      `json:"vms"`
	}
)

// ParsePush reads the body of POST /v1/inventory: one JSON object shaped
// like Document. Unknown keys are errors; a field given as "" removes the
// relation from the API's layer. Any problem refuses the whole body.
func ParsePush(body []byte) ([]model.InventoryRelation, error) {
	const file = "request"
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var d pushDoc
	if err := dec.Decode(&d); err != nil {
		return nil, &Error{File: file, Problems: []Problem{{Field: "body", Message: "not a valid inventory JSON object: " + err.Error()}}}
	}
	if dec.More() {
		return nil, &Error{File: file, Problems: []Problem{{Field: "body", Message: "holds more than one JSON value; send one object"}}}
	}
	var entries []entry
	add := func(kind, name, path string, fields map[string]*string) {
		e := entry{kind: kind, name: strings.TrimSpace(name), path: path, vals: map[string]string{}, set: map[string]bool{}}
		for f, p := range fields {
			if p != nil {
				e.set[f] = true
				e.vals[f] = strings.TrimSpace(*p)
			}
		}
		entries = append(entries, e)
	}
	for i, s := range d.Services {
		add(KindService, s.Name, fmt.Sprintf("services[%d]", i), map[string]*string{FieldTeam: s.Team})
	}
	for i, t := range d.Teams {
		add(KindTeam, t.Name, fmt.Sprintf("teams[%d]", i), map[string]*string{
			FieldSlackChannel: t.SlackChannel, FieldSlackUsergroup: t.SlackUsergroup,
			FieldJiraComponent: t.JiraComponent, FieldJiraAssignee: t.JiraAssignee,
		})
	}
	for i, v := range d.VMs {
		add(KindVM, v.ID, fmt.Sprintf("vms[%d]", i), map[string]*string{FieldService: v.Service})
	}
	rels, probs := build(entries, true)
	if len(probs) > 0 {
		return nil, &Error{File: file, Problems: probs}
	}
	return rels, nil
}
