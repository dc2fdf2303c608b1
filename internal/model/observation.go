// Package model holds the vocabulary every part of vmtriage shares: what a
// collector observed, what the fleet looks like now, and the incidents that
// the rules raise. It has no dependencies beyond the standard library so that
// collectors, rules, bot and tickets can all speak it without importing each
// other.
package model

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is what an observation or incident is about.
type Kind string

// The kinds of thing vmtriage observes.
const (
	KindVM      Kind = "vm"
	KindHost    Kind = "host"
	KindService Kind = "service"
)

// State is the state a collector reported. VMs use running, crashed,
// shutoff, paused, unavailable and unknown; services use up, down and
// unknown; hosts may report up, down or unknown, or leave the state empty and
// carry only hardware facts.
type State string

// The states a collector may report.
const (
	StateRunning     State = "running"
	StateCrashed     State = "crashed"
	StateShutoff     State = "shutoff"
	StatePaused      State = "paused"
	StateUnavailable State = "unavailable"
	StateUnknown     State = "unknown"
	StateUp          State = "up"
	StateDown        State = "down"
)

// Down reports whether a VM in this state is not serving: every state but
// running (and unknown, which says nothing either way) counts as down.
func (s State) Down() bool {
	switch s {
	case StateCrashed, StateShutoff, StatePaused, StateUnavailable, StateDown:
		return true
	}
	return false
}

var validStates = map[Kind][]State{
	KindVM:      {StateRunning, StateCrashed, StateShutoff, StatePaused, StateUnavailable, StateUnknown},
	KindHost:    {"", StateUp, StateDown, StateUnknown},
	KindService: {StateUp, StateDown, StateUnknown},
}

// Well-known attribute names. Host hardware facts travel in an observation's
// attrs under these names; collectors map their sources onto them so that
// rules read one vocabulary.
const (
	AttrECCCorrected     = "ecc_corrected"     // number: corrected memory errors in the period
	AttrECCUncorrected   = "ecc_uncorrected"   // number: uncorrected memory errors in the period
	AttrMCE              = "mce"               // number: machine-check exceptions in the period
	AttrDiskErrors       = "disk_errors"       // number: disk I/O errors in the period
	AttrNICUp            = "nic_up"            // bool: every data NIC has link
	AttrPSUOK            = "psu_ok"            // bool: every power supply is healthy
	AttrTempC            = "temp_c"            // number: hottest sensor, °C
	AttrStorageReachable = "storage_reachable" // bool: external storage paths reachable
	AttrNetworkReachable = "network_reachable" // bool: external network paths reachable
	AttrCPUFree          = "cpu_free"          // number: free vCPUs for placement
	AttrMemFreeMB        = "mem_free_mb"       // number: free memory for placement, MiB
	AttrCrashReason      = "crash_reason"      // string: why a VM crashed, as its source says
)

// attrKinds types the well-known attributes so a wrong type is refused at
// the door rather than misread by a rule.
var attrKinds = map[string]string{
	AttrECCCorrected:     "number",
	AttrECCUncorrected:   "number",
	AttrMCE:              "number",
	AttrDiskErrors:       "number",
	AttrNICUp:            "bool",
	AttrPSUOK:            "bool",
	AttrTempC:            "number",
	AttrStorageReachable: "bool",
	AttrNetworkReachable: "bool",
	AttrCPUFree:          "number",
	AttrMemFreeMB:        "number",
	AttrCrashReason:      "string",
}

// Limits on outside input; they keep one bad sender from filling Redis.
const (
	MaxIDLen      = 256
	MaxAttrs      = 64
	MaxAttrKeyLen = 64
	MaxAttrValLen = 1024
	// MaxAge is how old an observation may be when it arrives; older ones are
	// refused and counted, never applied (they would rewrite history).
	MaxAge = 48 * time.Hour
	// MaxSkew is how far in the future a source clock may run.
	MaxSkew = 5 * time.Minute
)

// Observation is one fact a collector saw, as the contract defines it. The
// three timestamps let the ingestion latency of every source be measured:
// TimeGenerated is set by the source, TimeReceived by the receiver, and
// TimeStored when the state store applied it.
type Observation struct {
	Source        string         `json:"source"`
	Kind          Kind           `json:"kind"`
	ID            string         `json:"id"`
	Host          string         `json:"host,omitempty"`
	Site          string         `json:"site,omitempty"`
	State         State          `json:"state,omitempty"`
	Event         string         `json:"event,omitempty"`
	Attrs         map[string]any `json:"attrs,omitempty"`
	TimeGenerated time.Time      `json:"time_generated"`
	TimeReceived  time.Time      `json:"time_received,omitzero"`
	TimeStored    time.Time      `json:"time_stored,omitzero"`
}

// Key identifies the observed thing within its kind. Services are named per
// host ("host-007/libvirtd") because the same component runs on every host.
func (o *Observation) Key() string {
	if o.Kind == KindService && o.Host != "" {
		return o.Host + "/" + o.ID
	}
	return o.ID
}

// Num returns a numeric attribute, or 0 when it is absent.
func (o *Observation) Num(name string) float64 {
	f, _ := o.Attrs[name].(float64)
	return f
}

// Bool returns a boolean attribute and whether it was present.
func (o *Observation) Bool(name string) (value, ok bool) {
	value, ok = o.Attrs[name].(bool)
	return value, ok
}

// Str returns a string attribute, or "" when it is absent.
func (o *Observation) Str(name string) string {
	s, _ := o.Attrs[name].(string)
	return s
}

// Validate checks an observation against the contract at time now and
// returns every problem found, joined, or nil. It normalises numeric
// attributes to float64 as a side effect, so rules see one numeric type.
func (o *Observation) Validate(now time.Time) error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	checkName := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			bad("%s is required", field)
		case v == "":
		case field == "event":
			if p := nameProblem(v); p != "" && p != "contains whitespace or braces" {
				bad("%s %s", field, p)
			}
		default:
			if p := nameProblem(v); p == "contains whitespace or braces" {
				bad("%s %q %s", field, v, p)
			} else if p != "" {
				bad("%s %s", field, p)
			}
		}
	}
	checkName("source", o.Source, true)
	checkName("id", o.ID, true)
	checkName("host", o.Host, false)
	checkName("site", o.Site, false)
	checkName("event", o.Event, false)

	states, ok := validStates[o.Kind]
	switch {
	case o.Kind == "":
		bad("kind is required (vm, host or service)")
	case !ok:
		bad("kind %q is not one of vm, host, service", o.Kind)
	case !containsState(states, o.State):
		bad("state %q is not valid for kind %s (want %s)", o.State, o.Kind, joinStates(states))
	}
	if len(o.Attrs) > MaxAttrs {
		bad("attrs has %d entries, more than %d", len(o.Attrs), MaxAttrs)
	}
	keys := make([]string, 0, len(o.Attrs))
	for k := range o.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || utf8.RuneCountInString(k) > MaxAttrKeyLen {
			bad("attrs key %q is empty or longer than %d characters", k, MaxAttrKeyLen)
			continue
		}
		v, err := normaliseAttr(o.Attrs[k])
		if err != nil {
			bad("attrs.%s %v", k, err)
			continue
		}
		o.Attrs[k] = v
		if want, known := attrKinds[k]; known && kindOf(v) != want {
			bad("attrs.%s must be a %s, got %s", k, want, kindOf(v))
		}
	}

	switch {
	case o.TimeGenerated.IsZero():
		bad("time_generated is required (RFC 3339)")
	case o.TimeGenerated.After(now.Add(MaxSkew)):
		bad("time_generated %s is more than %s in the future", o.TimeGenerated.Format(time.RFC3339), MaxSkew)
	case o.TimeGenerated.Before(now.Add(-MaxAge)):
		bad("time_generated %s is more than %s old", o.TimeGenerated.Format(time.RFC3339), MaxAge)
	}

	if len(problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: problems}
}

// nameProblem says what is wrong with a source, id, host or site name, or
// "" when nothing is. Braces are refused because names become parts of
// Redis keys, whose hash tag they would break.
func nameProblem(v string) string {
	switch {
	case v == "":
		return "is empty"
	case utf8.RuneCountInString(v) > MaxIDLen:
		return fmt.Sprintf("is longer than %d characters", MaxIDLen)
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case strings.ContainsAny(v, " \t\r\n{}"):
		return "contains whitespace or braces"
	}
	return ""
}

// InvalidError lists everything wrong with one record.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string { return strings.Join(e.Problems, "; ") }

func containsState(states []State, s State) bool {
	for _, v := range states {
		if v == s {
			return true
		}
	}
	return false
}

func joinStates(states []State) string {
	var b strings.Builder
	for _, s := range states {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}

func normaliseAttr(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if utf8.RuneCountInString(x) > MaxAttrValLen {
			return nil, fmt.Errorf("is longer than %d characters", MaxAttrValLen)
		}
		return x, nil
	case bool:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("is not a finite number")
		}
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case nil:
		return nil, fmt.Errorf("is null")
	case map[string]any:
		return nil, fmt.Errorf("must be a string, number or bool, got an object")
	case []any:
		return nil, fmt.Errorf("must be a string, number or bool, got an array")
	default:
		return nil, fmt.Errorf("must be a string, number or bool, got %T", v)
	}
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
