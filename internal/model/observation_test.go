package model_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestObservationValidate(t *testing.T) {
	good := func() model.Observation {
		return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: "vm-0042", Host: "host-007", Site: "pod-a",
			State: model.StateCrashed, TimeGenerated: now.Add(-time.Minute)}
	}
	many := map[string]any{}
	for i := range model.MaxAttrs + 1 {
		many[strings.Repeat("k", 1+i%10)+string(rune('a'+i/10))] = true
	}
	tests := []struct {
		name   string
		change func(o *model.Observation)
		want   string // "" means valid
	}{
		{name: "good vm", change: func(*model.Observation) {}},
		{name: "host with facts and no state", change: func(o *model.Observation) {
			o.Kind, o.ID, o.Host, o.State = model.KindHost, "host-007", "", ""
			o.Attrs = map[string]any{"ecc_uncorrected": 1.0, "psu_ok": true}
		}},
		{name: "service up", change: func(o *model.Observation) { o.Kind, o.ID, o.State = model.KindService, "libvirtd", model.StateUp }},
		{name: "event may hold spaces", change: func(o *model.Observation) { o.Event = "Virtual Machine Crashed" }},
		{name: "ints are numbers", change: func(o *model.Observation) { o.Attrs = map[string]any{"temp_c": 70, "mce": int64(1)} }},

		{name: "no source", change: func(o *model.Observation) { o.Source = "" }, want: "source is required"},
		{name: "no id", change: func(o *model.Observation) { o.ID = "" }, want: "id is required"},
		{name: "no kind", change: func(o *model.Observation) { o.Kind = "" }, want: "kind is required (vm, host or service)"},
		{name: "unknown kind", change: func(o *model.Observation) { o.Kind = "VM" }, want: `kind "VM" is not one of vm, host, service`},
		{name: "vm state up", change: func(o *model.Observation) { o.State = model.StateUp },
			want: `state "up" is not valid for kind vm (want running, crashed, shutoff, paused, unavailable, unknown)`},
		{name: "host state running", change: func(o *model.Observation) { o.Kind, o.State = model.KindHost, model.StateRunning },
			want: `state "running" is not valid for kind host (want up, down, unknown)`},
		{name: "service without state", change: func(o *model.Observation) { o.Kind, o.State = model.KindService, "" },
			want: `state "" is not valid for kind service (want up, down, unknown)`},
		{name: "id too long", change: func(o *model.Observation) { o.ID = strings.Repeat("é", model.MaxIDLen+1) },
			want: "id is longer than 256 characters"},
		{name: "id of 256 characters, more bytes", change: func(o *model.Observation) { o.ID = strings.Repeat("é", model.MaxIDLen) }},
		{name: "id with a space", change: func(o *model.Observation) { o.ID = "vm 1" }, want: `id "vm 1" contains whitespace or braces`},
		{name: "host with a brace breaks the hash tag", change: func(o *model.Observation) { o.Host = "{vt}" },
			want: `host "{vt}" contains whitespace or braces`},
		{name: "site with a newline", change: func(o *model.Observation) { o.Site = "a\nb" }, want: `site "a\nb" contains whitespace or braces`},
		{name: "source not UTF-8", change: func(o *model.Observation) { o.Source = "lib\xffvirt" }, want: "source is not valid UTF-8"},
		{name: "too many attrs", change: func(o *model.Observation) { o.Attrs = many }, want: "attrs has 65 entries, more than 64"},
		{name: "empty attr key", change: func(o *model.Observation) { o.Attrs = map[string]any{"": 1.0} },
			want: `attrs key "" is empty or longer than 64 characters`},
		{name: "attr value too long", change: func(o *model.Observation) {
			o.Attrs = map[string]any{"note": strings.Repeat("x", model.MaxAttrValLen+1)}
		},
			want: "attrs.note is longer than 1024 characters"},
		{name: "attr null", change: func(o *model.Observation) { o.Attrs = map[string]any{"note": nil} }, want: "attrs.note is null"},
		{name: "attr NaN", change: func(o *model.Observation) { o.Attrs = map[string]any{"temp_c": math.NaN()} }, want: "attrs.temp_c is not a finite number"},
		{name: "attr infinite", change: func(o *model.Observation) { o.Attrs = map[string]any{"temp_c": math.Inf(1)} }, want: "attrs.temp_c is not a finite number"},
		{name: "attr list", change: func(o *model.Observation) { o.Attrs = map[string]any{"disks": []any{"sda"}} },
			want: "attrs.disks must be a string, number or bool, got an array"},
		{name: "well-known attr of the wrong type", change: func(o *model.Observation) { o.Attrs = map[string]any{"crash_reason": 3.0} },
			want: "attrs.crash_reason must be a string, got number"},
		{name: "no time", change: func(o *model.Observation) { o.TimeGenerated = time.Time{} }, want: "time_generated is required (RFC 3339)"},
		{name: "too old", change: func(o *model.Observation) { o.TimeGenerated = now.Add(-49 * time.Hour) },
			want: "time_generated 2026-11-20T09:00:00Z is more than 48h0m0s old"},
		{name: "from the future", change: func(o *model.Observation) { o.TimeGenerated = now.Add(time.Hour) },
			want: "time_generated 2026-11-22T11:00:00Z is more than 5m0s in the future"},
		{name: "every problem is listed, in order", change: func(o *model.Observation) {
			*o = model.Observation{Kind: model.KindVM, State: "zombie", Attrs: map[string]any{"psu_ok": "yes", "b": nil}}
		}, want: `source is required; id is required; state "zombie" is not valid for kind vm (want running, crashed, shutoff, paused, unavailable, unknown); ` +
			`attrs.b is null; attrs.psu_ok must be a bool, got string; time_generated is required (RFC 3339)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.change(&o)
			err := o.Validate(now)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate = nil, want %q", tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Fatalf("Validate =\n %q\nwant\n %q", err.Error(), tc.want)
			}
			if err == nil {
				for k, v := range o.Attrs {
					if _, ok := v.(float64); !ok && k != "note" {
						if _, ok := v.(bool); !ok {
							t.Errorf("attrs.%s = %T after Validate; numbers must be float64", k, v)
						}
					}
				}
			}
		})
	}
}

func TestObservationKey(t *testing.T) {
	tests := []struct {
		name string
		o    model.Observation
		want string
	}{
		{name: "vm", o: model.Observation{Kind: model.KindVM, ID: "vm-1", Host: "host-1"}, want: "vm-1"},
		{name: "service is named per host", o: model.Observation{Kind: model.KindService, ID: "libvirtd", Host: "host-1"}, want: "host-1/libvirtd"},
		{name: "service without host", o: model.Observation{Kind: model.KindService, ID: "libvirtd"}, want: "libvirtd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.Key(); got != tc.want {
				t.Errorf("Key() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStateDown(t *testing.T) {
	down := map[model.State]bool{
		model.StateRunning: false, model.StateUnknown: false, model.StateUp: false, "": false,
		model.StateCrashed: true, model.StateShutoff: true, model.StatePaused: true, model.StateUnavailable: true, model.StateDown: true,
	}
	for s, want := range down {
		if got := s.Down(); got != want {
			t.Errorf("State(%q).Down() = %v, want %v", s, got, want)
		}
	}
}

func TestPeriodStart(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 25, 5, time.FixedZone("CET", 3600))
	tests := []struct {
		name   string
		length time.Duration
		want   time.Time
	}{
		{name: "minute", length: time.Minute, want: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)},
		{name: "five minutes", length: 5 * time.Minute, want: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)},
		{name: "seven seconds aligns to the epoch", length: 7 * time.Second, want: time.Unix(at.Unix()-at.Unix()%7, 0).UTC()},
		{name: "no length", length: 0, want: at},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := model.PeriodStart(at, tc.length); !got.Equal(tc.want) {
				t.Errorf("PeriodStart = %v, want %v", got, tc.want)
			}
		})
	}
}
