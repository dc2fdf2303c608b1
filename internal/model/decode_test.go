package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// now is the receiver's clock in every decoding test.
var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// rec renders one observation record with time_generated at now plus off;
// extra is spliced in before the closing brace.
func rec(kind, id, state string, off time.Duration, extra string) string {
	return fmt.Sprintf(`{"source":"libvirt","kind":%q,"id":%q,"state":%q,"time_generated":%q%s}`,
		kind, id, state, now.Add(off).Format(time.RFC3339Nano), extra)
}

func vmRec(id, state string) string { return rec("vm", id, state, -time.Minute, "") }

func TestDecodeObservations(t *testing.T) {
	longBad := make([]string, model.MaxRecordErrors+5)
	for i := range longBad {
		longBad[i] = `{"kind":"vm"}`
	}
	tests := []struct {
		name    string
		body    string
		wantIDs []string
		// wantErr lists the refused records exactly, in order.
		wantErr []model.RecordError
		// wantTotal is the BatchError's Total when it differs from
		// len(wantErr) (more bad records than are listed).
		wantTotal int
		// wantIs and wantPlain describe errors that are not a BatchError.
		wantIs    error
		wantPlain string
	}{
		{name: "one object", body: vmRec("vm-1", "crashed"), wantIDs: []string{"vm-1"}},
		{
			name:    "one pretty-printed object over several lines",
			body:    "{\n  \"source\": \"libvirt\",\n  \"kind\": \"vm\",\n  \"id\": \"vm-1\",\n  \"state\": \"running\",\n  \"time_generated\": \"2026-11-22T09:59:00Z\"\n}\n",
			wantIDs: []string{"vm-1"},
		},
		{name: "array", body: "[" + vmRec("vm-1", "running") + ",\n " + vmRec("vm-2", "paused") + "]", wantIDs: []string{"vm-1", "vm-2"}},
		{name: "array behind whitespace", body: " \n\t[" + vmRec("vm-1", "running") + "] \n", wantIDs: []string{"vm-1"}},
		{name: "JSON lines", body: vmRec("vm-1", "running") + "\n" + vmRec("vm-2", "shutoff") + "\n" + vmRec("vm-3", "unknown"), wantIDs: []string{"vm-1", "vm-2", "vm-3"}},
		{name: "JSON lines with a final newline", body: vmRec("vm-1", "running") + "\n" + vmRec("vm-2", "running") + "\n", wantIDs: []string{"vm-1", "vm-2"}},
		{name: "JSON lines with blank lines", body: "\n" + vmRec("vm-1", "running") + "\n\n  \t\n" + vmRec("vm-2", "running") + "\n\n", wantIDs: []string{"vm-1", "vm-2"}},
		{name: "JSON lines with CRLF", body: vmRec("vm-1", "running") + "\r\n" + vmRec("vm-2", "crashed") + "\r\n\r\n", wantIDs: []string{"vm-1", "vm-2"}},
		{
			name:    "every kind",
			body:    rec("host", "host-7", "", 0, `,"attrs":{"ecc_uncorrected":2,"nic_up":true}`) + "\n" + rec("host", "host-8", "up", 0, "") + "\n" + rec("service", "libvirtd", "down", 0, `,"host":"host-7"`),
			wantIDs: []string{"host-7", "host-8", "libvirtd"},
		},

		{name: "empty body", body: "", wantIs: model.ErrEmpty},
		{name: "only whitespace", body: " \r\n\t\n", wantIs: model.ErrEmpty},
		{name: "empty array", body: "[ ]", wantIs: model.ErrEmpty},
		{name: "unclosed array", body: "[" + vmRec("vm-1", "running"), wantPlain: "body is not a JSON array of objects: malformed JSON at byte"},
		{name: "array of arrays", body: "[[1]]", wantErr: []model.RecordError{{Index: 0, Reason: "must be a JSON object, got array"}}},
		{
			name: "array elements that are not objects",
			body: `[1, "x", null, true]`,
			wantErr: []model.RecordError{
				{Index: 0, Reason: "must be a JSON object, got number"},
				{Index: 1, Reason: "must be a JSON object, got string"},
				{Index: 2, Reason: "must be a JSON object, got null"},
				{Index: 3, Reason: "must be a JSON object, got bool"},
			},
		},
		{
			name:    "bad JSON at line 3, blank line 2 not counted as a record",
			body:    vmRec("vm-1", "running") + "\n\n" + `{"source":"libvirt","kind":"vm",` + "\n" + vmRec("vm-4", "running"),
			wantErr: []model.RecordError{{Index: 1, Line: 3, Reason: "malformed JSON: the record ends before it is complete (a missing } or ])"}},
		},
		{
			name:    "garbage line",
			body:    vmRec("vm-1", "running") + "\nnot json\n",
			wantErr: []model.RecordError{{Index: 1, Line: 2, Reason: "malformed JSON at byte 2: invalid character 'o' in literal null (expecting 'u')"}},
		},
		{
			name:    "two values on one line",
			body:    vmRec("vm-1", "running") + " " + vmRec("vm-2", "running") + "\n" + vmRec("vm-3", "running"),
			wantErr: []model.RecordError{{Index: 0, Line: 1, ID: "vm-1", Reason: "more than one JSON value on the record"}},
		},
		{name: "null line", body: "null", wantErr: []model.RecordError{{Index: 0, Line: 1, Reason: "must be a JSON object, got null"}}},
		{
			name:    "unknown field",
			body:    rec("vm", "vm-1", "running", 0, `,"colour":"red"`),
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: `unknown field "colour"`}},
		},
		{
			name:    "source is a number",
			body:    `{"source":5,"kind":"vm","id":"vm-1","state":"running","time_generated":"2026-11-22T10:00:00Z"}`,
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "field source must be a string, got number"}},
		},
		{
			name:    "kind is a bool",
			body:    `[{"source":"s","kind":true,"id":"vm-1","state":"running","time_generated":"2026-11-22T10:00:00Z"}]`,
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "field kind must be a string, got bool"}},
		},
		{
			name:    "attrs is an array",
			body:    rec("vm", "vm-1", "running", 0, `,"attrs":[1]`),
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "field attrs must be an object, got array"}},
		},
		{
			name:    "attr holds an object",
			body:    rec("vm", "vm-1", "running", 0, `,"attrs":{"x":{"y":1}}`),
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "attrs.x must be a string, number or bool, got an object"}},
		},
		{
			name:    "attr number out of range",
			body:    rec("vm", "vm-1", "running", 0, `,"attrs":{"temp_c":1e400}`),
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "field attrs: number 1e400 is out of range"}},
		},
		{
			name:    "known attr of the wrong type",
			body:    rec("host", "host-7", "", 0, `,"attrs":{"nic_up":"yes","ecc_uncorrected":"2"}`),
			wantErr: []model.RecordError{{Index: 0, ID: "host-7", Reason: "attrs.ecc_uncorrected must be a number, got string; attrs.nic_up must be a bool, got string"}},
		},
		{
			name:    "time_generated is a number",
			body:    `{"source":"s","kind":"vm","id":"vm-1","state":"running","time_generated":1764000000}`,
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "time_generated must be an RFC 3339 string (e.g. 2026-11-22T10:00:00Z), got number"}},
		},
		{
			name:    "time_generated is not RFC 3339",
			body:    `{"source":"s","kind":"vm","id":"vm-1","state":"running","time_generated":"22/11/2026 10:00"}`,
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: `time_generated "22/11/2026 10:00" is not RFC 3339 (e.g. 2026-11-22T10:00:00Z)`}},
		},
		{
			name:    "time_received is not RFC 3339",
			body:    `{"source":"s","kind":"vm","id":"vm-1","state":"running","time_generated":"2026-11-22T10:00:00Z","time_received":"soon"}`,
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: `time_received "soon" is not RFC 3339 (e.g. 2026-11-22T10:00:00Z)`}},
		},
		{
			name:    "missing source, id and kind",
			body:    `{"state":"running","time_generated":"2026-11-22T10:00:00Z"}`,
			wantErr: []model.RecordError{{Index: 0, Reason: "source is required; id is required; kind is required (vm, host or service)"}},
		},
		{
			name:    "missing time_generated",
			body:    `{"source":"s","kind":"vm","id":"vm-1","state":"running"}`,
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "time_generated is required (RFC 3339)"}},
		},
		{
			name:    "unknown kind",
			body:    rec("switch", "sw-1", "up", 0, ""),
			wantErr: []model.RecordError{{Index: 0, ID: "sw-1", Reason: `kind "switch" is not one of vm, host, service`}},
		},
		{
			name: "invalid state per kind",
			body: strings.Join([]string{
				vmRec("vm-1", "up"),
				vmRec("vm-2", ""),
				rec("host", "host-1", "crashed", 0, ""),
				rec("service", "libvirtd", "running", 0, `,"host":"host-1"`),
				rec("service", "sshd", "", 0, `,"host":"host-1"`),
			}, "\n"),
			wantErr: []model.RecordError{
				{Index: 0, Line: 1, ID: "vm-1", Reason: `state "up" is not valid for kind vm (want running, crashed, shutoff, paused, unavailable, unknown)`},
				{Index: 1, Line: 2, ID: "vm-2", Reason: `state "" is not valid for kind vm (want running, crashed, shutoff, paused, unavailable, unknown)`},
				{Index: 2, Line: 3, ID: "host-1", Reason: `state "crashed" is not valid for kind host (want up, down, unknown)`},
				{Index: 3, Line: 4, ID: "libvirtd", Reason: `state "running" is not valid for kind service (want up, down, unknown)`},
				{Index: 4, Line: 5, ID: "sshd", Reason: `state "" is not valid for kind service (want up, down, unknown)`},
			},
		},
		{name: "exactly 48h old is accepted", body: rec("vm", "vm-1", "running", -model.MaxAge, ""), wantIDs: []string{"vm-1"}},
		{
			name:    "more than 48h old",
			body:    rec("vm", "vm-1", "running", -model.MaxAge-time.Second, ""),
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "time_generated 2026-11-20T09:59:59Z is more than 48h0m0s old"}},
		},
		{name: "exactly 5m in the future is accepted", body: rec("vm", "vm-1", "running", model.MaxSkew, ""), wantIDs: []string{"vm-1"}},
		{
			name:    "more than 5m in the future",
			body:    "[" + rec("vm", "vm-1", "running", model.MaxSkew+time.Second, "") + "]",
			wantErr: []model.RecordError{{Index: 0, ID: "vm-1", Reason: "time_generated 2026-11-22T10:05:01Z is more than 5m0s in the future"}},
		},
		{
			name:    "a time zone offset counts as the same instant",
			body:    `{"source":"s","kind":"vm","id":"vm-1","state":"running","time_generated":"2026-11-22T11:04:00+01:00"}`,
			wantIDs: []string{"vm-1"},
		},
		{
			name: "good records do not rescue the batch",
			body: "[" + vmRec("vm-1", "running") + "," + vmRec("vm-2", "exploded") + "," + vmRec("vm-3", "running") + "," + `{"id":"vm-4"}` + "]",
			wantErr: []model.RecordError{
				{Index: 1, ID: "vm-2", Reason: `state "exploded" is not valid for kind vm (want running, crashed, shutoff, paused, unavailable, unknown)`},
				{Index: 3, ID: "vm-4", Reason: "source is required; kind is required (vm, host or service); time_generated is required (RFC 3339)"},
			},
		},
		{
			name:      "more bad records than are listed",
			body:      strings.Join(longBad, "\n"),
			wantTotal: model.MaxRecordErrors + 5,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs, err := model.DecodeObservations([]byte(tc.body), now)
			switch {
			case tc.wantIs != nil:
				if !errors.Is(err, tc.wantIs) {
					t.Fatalf("error = %v, want %v", err, tc.wantIs)
				}
			case tc.wantPlain != "":
				var be *model.BatchError
				if err == nil || errors.As(err, &be) || !strings.Contains(err.Error(), tc.wantPlain) {
					t.Fatalf("error = %#v, want a plain error containing %q", err, tc.wantPlain)
				}
			case tc.wantErr != nil || tc.wantTotal > 0:
				var be *model.BatchError
				if !errors.As(err, &be) {
					t.Fatalf("error = %v, want a *BatchError", err)
				}
				wantTotal := tc.wantTotal
				if wantTotal == 0 {
					wantTotal = len(tc.wantErr)
				}
				if be.Total != wantTotal {
					t.Errorf("Total = %d, want %d", be.Total, wantTotal)
				}
				if tc.wantErr != nil && !reflect.DeepEqual(be.Records, tc.wantErr) {
					t.Errorf("records:\n got %+v\nwant %+v", be.Records, tc.wantErr)
				}
				if len(be.Records) > model.MaxRecordErrors {
					t.Errorf("%d records listed, more than MaxRecordErrors", len(be.Records))
				}
			default:
				if err != nil {
					t.Fatalf("error = %v", err)
				}
			}
			if err != nil {
				if obs != nil {
					t.Errorf("got %d observations along with an error; a refused batch must give none", len(obs))
				}
				return
			}
			var ids []string
			for _, o := range obs {
				ids = append(ids, o.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tc.wantIDs)
			}
		})
	}
}

func TestDecodeObservationsNormalisesAttrs(t *testing.T) {
	obs, err := model.DecodeObservations([]byte(rec("host", "host-7", "", 0,
		`,"attrs":{"ecc_uncorrected":2,"nic_up":false,"temp_c":71.5,"rack":"r12"}`)), now)
	if err != nil {
		t.Fatal(err)
	}
	o := obs[0]
	want := map[string]any{"ecc_uncorrected": 2.0, "nic_up": false, "temp_c": 71.5, "rack": "r12"}
	if !reflect.DeepEqual(o.Attrs, want) {
		t.Errorf("attrs = %#v, want %#v", o.Attrs, want)
	}
	if got := o.Num(model.AttrECCUncorrected); got != 2 {
		t.Errorf("Num(ecc_uncorrected) = %v, want 2", got)
	}
	if v, ok := o.Bool(model.AttrNICUp); v || !ok {
		t.Errorf("Bool(nic_up) = %v, %v; want false, true", v, ok)
	}
	if _, ok := o.Bool(model.AttrPSUOK); ok {
		t.Error("Bool(psu_ok) reports an absent attribute as present")
	}
	if got := o.Str("rack"); got != "r12" {
		t.Errorf("Str(rack) = %q", got)
	}
}

func TestBatchErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  model.BatchError
		want string
	}{
		{
			name: "one record",
			err:  model.BatchError{Total: 1, Records: []model.RecordError{{Index: 2, Reason: "id is required"}}},
			want: "1 invalid record(s): record 2: id is required",
		},
		{
			name: "lines name the line",
			err:  model.BatchError{Total: 2, Records: []model.RecordError{{Index: 0, Line: 4, Reason: "a"}, {Index: 1, Line: 9, Reason: "b"}}},
			want: "2 invalid record(s): line 4: a; line 9: b",
		},
		{
			name: "more than three are summarised",
			err: model.BatchError{Total: 150, Records: []model.RecordError{
				{Index: 0, Reason: "a"}, {Index: 1, Reason: "b"}, {Index: 2, Reason: "c"}, {Index: 3, Reason: "d"},
			}},
			want: "150 invalid record(s): record 0: a; record 1: b; record 2: c; and 147 more",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRecordErrorJSON pins the shape that the HTTP API returns for a
// refused record: index always, line and id only when known.
func TestRecordErrorJSON(t *testing.T) {
	b, err := json.Marshal([]model.RecordError{{Index: 0, Reason: "r"}, {Index: 3, Line: 5, ID: "vm-1", Reason: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"index":0,"reason":"r"},{"index":3,"line":5,"id":"vm-1","reason":"s"}]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func FuzzDecodeObservations(f *testing.F) {
	seeds := []string{
		vmRec("vm-1", "crashed"),
		"[" + vmRec("vm-1", "running") + "," + vmRec("vm-2", "paused") + "]",
		vmRec("vm-1", "running") + "\r\n\r\n" + vmRec("vm-2", "crashed"),
		rec("host", "host-7", "", 0, `,"attrs":{"ecc_uncorrected":2,"nic_up":true,"temp_c":1e3}`),
		rec("service", "libvirtd", "down", 0, `,"host":"host-7","event":"x y"`),
		`{"source":"s","kind":"vm","id":"v","state":"running","time_generated":"2026-11-22T10:00:00Z","time_received":"0000-01-01T00:00:00+01:00"}`,
		`[1,null,"x",{}]`, "null", "[", "{", "}\n{", "\xff", `{"attrs":{"":1}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		obs, err := model.DecodeObservations(body, now)
		if err != nil {
			if obs != nil {
				t.Fatalf("observations returned along with error %v", err)
			}
			var be *model.BatchError
			if errors.As(err, &be) {
				if be.Total < 1 || len(be.Records) == 0 || len(be.Records) > model.MaxRecordErrors || be.Total < len(be.Records) {
					t.Fatalf("inconsistent BatchError: total %d, %d records", be.Total, len(be.Records))
				}
				for _, r := range be.Records {
					if r.Reason == "" || r.Index < 0 || r.Line < 0 {
						t.Fatalf("record error without a reason or with a negative place: %+v", r)
					}
				}
			}
			return
		}
		if len(obs) == 0 {
			t.Fatal("no error and no observations")
		}
		for i := range obs {
			if err := obs[i].Validate(now); err != nil {
				t.Fatalf("accepted record %d does not validate: %v", i, err)
			}
		}
		// What was accepted must survive the trip through the stream,
		// which stores observations as JSON.
		b, err := json.Marshal(obs)
		if err != nil {
			t.Fatalf("accepted records cannot be encoded: %v", err)
		}
		again, err := model.DecodeObservations(b, now)
		if err != nil {
			t.Fatalf("accepted records re-encoded are refused: %v\n%s", err, b)
		}
		if len(again) != len(obs) {
			t.Fatalf("re-decoded %d records, want %d", len(again), len(obs))
		}
	})
}

func TestBatchErrorBySource(t *testing.T) {
	lines := []string{
		`{"source":"libvirt","kind":"vm","id":"vm-1","state":"up","time_generated":"2026-11-22T10:00:00Z"}`,
		`{"source":"azure","kind":"vm","id":"vm-2","time_generated":"2026-11-22T10:00:00Z"}`,
		`{"source":"azure","kind":"nic","id":"vm-3","state":"up","time_generated":"2026-11-22T10:00:00Z"}`,
		`{"source":"azure","kind":"vm","id":"vm-4","state":"running","time_generated":"2026-11-22T10:00:00Z"}`, // good
		`{"source":"my collector","kind":"vm","id":"vm-5"}`,
		`{"kind":"vm","id":"vm-6"}`,
		`{"source":"libvirt",`,
	}
	_, err := model.DecodeObservations([]byte(strings.Join(lines, "\n")), now)
	var be *model.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("error = %v, want a *BatchError", err)
	}
	want := map[string]int{"libvirt": 1, "azure": 2, "": 3}
	if !reflect.DeepEqual(be.BySource, want) {
		t.Errorf("BySource = %v, want %v", be.BySource, want)
	}
}
