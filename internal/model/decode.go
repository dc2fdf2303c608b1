package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxRecordErrors caps how many bad records a BatchError lists, so a
// 100,000-line file of garbage gets a readable answer.
const MaxRecordErrors = 100

// RecordError says why one record of a batch was refused. Index is the
// record's position in the batch, from 0: a JSON array's element, or for
// JSON lines the record's rank among the non-blank lines; the single-object
// form uses Index 0. Line, set only for JSON lines, is the record's line
// number from 1, which is what a person looks for in the file.
type RecordError struct {
	Index  int    `json:"index"`
	Line   int    `json:"line,omitempty"`
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
}

func (e RecordError) location() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d", e.Line)
	}
	return fmt.Sprintf("record %d", e.Index)
}

// BatchError reports every refused record of a batch. A batch with any bad
// record is refused whole: nothing of it is applied.
type BatchError struct {
	Records []RecordError `json:"errors"`
	// Total is the number of bad records, which may exceed len(Records).
	Total int `json:"total_errors"`
	// BySource counts every bad record (listed or not) by its source, ""
	// when the source could not be read or is not a valid name, so that
	// refusals can be counted per collector.
	BySource map[string]int `json:"-"`
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid record(s): ", e.Total)
	for i, r := range e.Records {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", e.Total-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", r.location(), r.Reason)
	}
	return b.String()
}

func (e *BatchError) add(r RecordError, source string) {
	e.Total++
	if len(e.Records) < MaxRecordErrors {
		e.Records = append(e.Records, r)
	}
	if nameProblem(source) != "" {
		source = ""
	}
	if e.BySource == nil {
		e.BySource = map[string]int{}
	}
	e.BySource[source]++
}

// ErrEmpty is returned for a body with no records at all.
var ErrEmpty = errors.New("no observations in body")

// DecodeObservations parses one JSON object, a JSON array of objects, or JSON
// lines (one object per line; blank lines are skipped) and validates every
// record at time now. Unknown fields are errors. It returns either all the
// records or a *BatchError naming each bad one; never a partial result.
func DecodeObservations(body []byte, now time.Time) ([]Observation, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, ErrEmpty
	}
	be := &BatchError{}
	var out []Observation
	switch {
	case trimmed[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("body is not a JSON array of objects: %w", describeJSONError(err))
		}
		if len(raws) == 0 {
			return nil, ErrEmpty
		}
		out = make([]Observation, 0, len(raws))
		for i, raw := range raws {
			o, err := decodeOne(raw, now)
			if err != nil {
				be.add(RecordError{Index: i, ID: o.ID, Reason: err.Error()}, o.Source)
				continue
			}
			out = append(out, o)
		}
	case trimmed[0] == '{' && json.Valid(trimmed):
		o, err := decodeOne(trimmed, now)
		if err != nil {
			be.add(RecordError{Index: 0, ID: o.ID, Reason: err.Error()}, o.Source)
		} else {
			out = []Observation{o}
		}
	default:
		line, index := 0, 0
		rest := body
		for len(rest) > 0 {
			line++
			var cur []byte
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				cur, rest = rest[:i], rest[i+1:]
			} else {
				cur, rest = rest, nil
			}
			cur = bytes.TrimSpace(cur)
			if len(cur) == 0 {
				continue
			}
			o, err := decodeOne(cur, now)
			index++
			if err != nil {
				be.add(RecordError{Index: index - 1, Line: line, ID: o.ID, Reason: err.Error()}, o.Source)
				continue
			}
			out = append(out, o)
		}
		if len(out) == 0 && be.Total == 0 {
			return nil, ErrEmpty
		}
	}
	if be.Total > 0 {
		return nil, be
	}
	return out, nil
}

func decodeOne(raw []byte, now time.Time) (Observation, error) {
	var o Observation
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if bytes.Equal(raw, []byte("null")) {
		return o, errors.New("must be a JSON object, got null")
	}
	if err := dec.Decode(&o); err != nil {
		if isTimeError(err) {
			if terr := timeFieldError(raw); terr != nil {
				return o, terr
			}
		}
		return o, describeJSONError(err)
	}
	if dec.More() {
		return o, errors.New("more than one JSON value on the record")
	}
	if err := o.Validate(now); err != nil {
		return o, err
	}
	return o, nil
}

// timeFields are the Observation fields that hold times.
var timeFields = []string{"time_generated", "time_received", "time_stored"}

// isTimeError reports whether err came from decoding a time.Time, whose
// errors name neither the field nor the expected form.
func isTimeError(err error) bool {
	var tim *time.ParseError
	return errors.As(err, &tim) || strings.HasPrefix(err.Error(), "Time.UnmarshalJSON")
}

// timeFieldError finds which time field of raw (a JSON object) is not an
// RFC 3339 string and says so by name; nil if it cannot tell. It runs only
// after decoding failed, so its second pass costs nothing on good input.
func timeFieldError(raw []byte) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	for key, v := range m {
		for _, f := range timeFields {
			// encoding/json matches field names case-insensitively; so
			// does this, to find the value it choked on.
			if !strings.EqualFold(key, f) || bytes.Equal(v, []byte("null")) {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return fmt.Errorf("%s must be an RFC 3339 string (e.g. 2026-11-22T10:00:00Z), got %s", f, jsonValueKind(v))
			}
			var t time.Time
			if t.UnmarshalText([]byte(s)) != nil {
				return fmt.Errorf("%s %q is not RFC 3339 (e.g. 2026-11-22T10:00:00Z)", f, s)
			}
		}
	}
	return nil
}

// jsonValueKind names the kind of a JSON value by its first byte.
func jsonValueKind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// describeJSONError turns encoding/json's errors into something an operator
// can act on without knowing Go's type names.
func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tim *time.ParseError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		want := jsonKind(typ.Type.Kind().String())
		switch {
		case typ.Field == "":
			return fmt.Errorf("must be a JSON object, got %s", typ.Value)
		case want == "number" && strings.HasPrefix(typ.Value, "number"):
			// The right kind but unrepresentable, like 1e400.
			return fmt.Errorf("field %s: %s is out of range", typ.Field, typ.Value)
		}
		return fmt.Errorf("field %s must be %s, got %s", typ.Field, withArticle(want), typ.Value)
	case errors.As(err, &tim):
		return fmt.Errorf("time %q is not RFC 3339 (e.g. 2026-11-22T10:00:00Z)", tim.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("malformed JSON: the record ends before it is complete (a missing } or ])")
	}
	return err
}

func withArticle(kind string) string {
	if kind == "object" || kind == "array" {
		return "an " + kind
	}
	return "a " + kind
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "bool"
	case "int", "int8", "int16", "int32", "int64",
		"uint", "uint8", "uint16", "uint32", "uint64",
		"float32", "float64":
		return "number"
	}
	return goKind
}
