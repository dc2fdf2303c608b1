package model_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func incidents() map[string]model.Incident {
	started := time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)
	return map[string]model.Incident{
		// Just opened: nothing acked, resolved, ticketed or linked yet.
		"incident_new.golden": {
			ID: "inc-1", Fingerprint: "f00d", Rule: "vm-guest-crash", Status: model.StatusPending,
			Severity: model.SeverityMedium, Cause: "guest-crash", Trigger: model.TriggerVM, Action: model.ActionRestartVM,
			Approval: model.ApprovalNotRequired, Kind: model.KindVM, Subject: "vm-0042",
			StartedAt: started, Level: 0, Version: 1,
		},
		// Everything set.
		"incident_resolved.golden": {
			ID: "inc-2", Fingerprint: "beef", Rule: "vm-crash-on-failing-host", Status: model.StatusResolved,
			Severity: model.SeverityCritical, Cause: "host-hardware-fault", Trigger: model.TriggerPlatform,
			Action: model.ActionMigrateHost, Approval: model.ApprovalApproved, Kind: model.KindHost, Subject: "host-007",
			Host: "host-007", Site: "pod-a", VMs: []string{"vm-0042", "vm-0043"},
			Summary: "2 VM(s) crashed on host-007", HostState: "failed", Event: "VirtualMachineCrashed",
			StartedAt: started, FiringAt: started.Add(time.Second), UpdatedAt: started.Add(time.Hour),
			ResolvedAt: started.Add(time.Hour), Level: 2, AckedBy: "U123", AckedAt: started.Add(5 * time.Minute),
			Ticket: "OPS-123", TicketURL: "https://jira.example/browse/OPS-123",
			Runbooks: []string{"https://kb.example/host-hardware-fault"}, Silenced: true, InhibitedBy: "inc-0",
			Reopened: 1, PlatformRecovery: true, Escalation: "critical", Targets: []string{"channel:#ops"}, Version: 9,
		},
	}
}

func TestIncidentJSONGolden(t *testing.T) {
	for name, inc := range incidents() {
		t.Run(name, func(t *testing.T) {
			b, err := json.MarshalIndent(inc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, append(b, '\n'))

			// The contract's nulls and empty lists.
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"resolved_at", "acked_by", "ticket"} {
				if v, ok := m[k]; !ok || (v == nil) != (name == "incident_new.golden") {
					t.Errorf("%s = %#v (present %v)", k, v, ok)
				}
			}
			for _, k := range []string{"vms", "runbooks"} {
				if _, ok := m[k].([]any); !ok {
					t.Errorf("%s = %#v, want a list", k, m[k])
				}
			}

			// And back again.
			var back model.Incident
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			want := inc
			if want.VMs == nil {
				want.VMs = []string{}
			}
			if want.Runbooks == nil {
				want.Runbooks = []string{}
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
			}
		})
	}
}

// TestIncidentMatchesContract checks every key of the contract's example
// incident (shared/DESIGN.md) against what MarshalJSON writes: the key is
// there, with the same JSON type (null where the example has null).
func TestIncidentMatchesContract(t *testing.T) {
	raw, err := os.ReadFile("testdata/contract_incident.json")
	if err != nil {
		t.Fatal(err)
	}
	var contract map[string]any
	if err := json.Unmarshal(raw, &contract); err != nil {
		t.Fatal(err)
	}
	inc := incidents()["incident_resolved.golden"]
	inc.ResolvedAt, inc.AckedBy = time.Time{}, "" // the example is firing and unacked
	b, err := json.Marshal(inc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range contract {
		v, ok := got[k]
		if !ok {
			t.Errorf("key %q of the contract is missing", k)
			continue
		}
		if reflect.TypeOf(v) != reflect.TypeOf(want) {
			t.Errorf("%s = %#v, the contract has %#v", k, v, want)
		}
	}
}

func TestIncidentFilterMatch(t *testing.T) {
	inc := incidents()["incident_resolved.golden"]
	tests := []struct {
		name string
		f    model.IncidentFilter
		want bool
	}{
		{name: "empty filter", want: true},
		{name: "status", f: model.IncidentFilter{Status: model.StatusResolved}, want: true},
		{name: "other status", f: model.IncidentFilter{Status: model.StatusFiring}},
		{name: "site", f: model.IncidentFilter{Site: "pod-a"}, want: true},
		{name: "other site", f: model.IncidentFilter{Site: "pod-b"}},
		{name: "severity", f: model.IncidentFilter{Severity: model.SeverityCritical}, want: true},
		{name: "other severity", f: model.IncidentFilter{Severity: model.SeverityLow}},
		{name: "host", f: model.IncidentFilter{Host: "host-007"}, want: true},
		{name: "other host", f: model.IncidentFilter{Host: "host-008"}},
		{name: "one of its vms", f: model.IncidentFilter{VM: "vm-0043"}, want: true},
		{name: "not one of its vms", f: model.IncidentFilter{VM: "vm-0044"}},
		{name: "all at once", f: model.IncidentFilter{Status: model.StatusResolved, Site: "pod-a", Severity: model.SeverityCritical, Host: "host-007", VM: "vm-0042"}, want: true},
		{name: "all but one", f: model.IncidentFilter{Status: model.StatusResolved, Site: "pod-a", Severity: model.SeverityHigh, Host: "host-007", VM: "vm-0042"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(&inc); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSilence(t *testing.T) {
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	vmInc := &model.Incident{Kind: model.KindVM, Subject: "vm-9", Host: "host-1", Site: "pod-a", Rule: "vm-guest-crash"}
	hostInc := &model.Incident{Kind: model.KindHost, Subject: "host-1", Host: "host-1", Site: "pod-a", Rule: "host-fault", VMs: []string{"vm-1", "vm-2"}}
	tests := []struct {
		name     string
		s        model.Silence
		inc      *model.Incident
		want     bool
		wantHost bool // the same silence against hostInc
	}{
		{name: "no matcher matches nothing", s: model.Silence{}, inc: vmInc},
		{name: "host", s: model.Silence{Host: "host-1"}, inc: vmInc, want: true, wantHost: true},
		{name: "other host", s: model.Silence{Host: "host-2"}, inc: vmInc},
		{name: "site", s: model.Silence{Site: "pod-a"}, inc: vmInc, want: true, wantHost: true},
		{name: "rule", s: model.Silence{Rule: "vm-guest-crash"}, inc: vmInc, want: true},
		{name: "vm by subject", s: model.Silence{VM: "vm-9"}, inc: vmInc, want: true},
		{name: "vm listed on a host incident", s: model.Silence{VM: "vm-2"}, inc: vmInc, wantHost: true},
		{name: "every matcher must hold", s: model.Silence{Host: "host-1", Rule: "other"}, inc: vmInc},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Matches(tc.inc); got != tc.want {
				t.Errorf("Matches(vm incident) = %v, want %v", got, tc.want)
			}
			if got := tc.s.Matches(hostInc); got != tc.wantHost {
				t.Errorf("Matches(host incident) = %v, want %v", got, tc.wantHost)
			}
		})
	}
	s := model.Silence{Host: "host-1", StartsAt: start, EndsAt: start.Add(time.Hour)}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{start.Add(-time.Nanosecond), false}, {start, true}, {start.Add(59 * time.Minute), true}, {start.Add(time.Hour), false}} {
		if got := s.Active(c.at); got != c.want {
			t.Errorf("Active(%v) = %v, want %v", c.at, got, c.want)
		}
	}
}

func TestSeverity(t *testing.T) {
	order := []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow}
	for i, s := range order {
		if s.Rank() != i || !s.Valid() {
			t.Errorf("%s: Rank %d Valid %v, want %d true", s, s.Rank(), s.Valid(), i)
		}
	}
	if s := model.Severity("urgent"); s.Valid() || s.Rank() != 4 {
		t.Errorf("urgent: Rank %d Valid %v", s.Rank(), s.Valid())
	}
}
