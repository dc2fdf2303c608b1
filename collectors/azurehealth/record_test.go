package azurehealth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func rec(id, props string) string {
	return `{"id":"` + id + `","name":"current","type":"Microsoft.ResourceHealth/AvailabilityStatuses","location":"West Europe","properties":{` + props + `}}`
}

const vmID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1/providers/Microsoft.ResourceHealth/availabilityStatuses/current"

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		wantName  string
		wantState model.State
		wantEvent string
		wantAttr  map[string]any
		wantErr   string
		notVM     bool
	}{
		{name: "available", raw: rec(vmID, `"availabilityState":"Available","title":"Available"`), wantName: "vm-1", wantState: model.StateRunning},
		{name: "degraded is still running", raw: rec(vmID, `"availabilityState":"Degraded","annotationName":"AccelnetUnhealthy"`),
			wantName: "vm-1", wantState: model.StateRunning, wantEvent: "AccelnetUnhealthy", wantAttr: map[string]any{"availability_state": "Degraded"}},
		{name: "unavailable with a title naming the annotation", raw: rec(vmID, `"availabilityState":"Unavailable","title":"VirtualMachineRebootInitiatedForPlannedMaintenance","reasonType":"Planned","context":"Platform Initiated","category":"Planned","reasonChronicity":"Transient"`),
			wantName: "vm-1", wantState: model.StateUnavailable, wantEvent: "VirtualMachineRebootInitiatedForPlannedMaintenance",
			wantAttr: map[string]any{"reason_type": "Planned", "context": "Platform Initiated", "category": "Planned", "reason_chronicity": "Transient"}},
		{name: "a free-text title is not an event", raw: rec(vmID, `"availabilityState":"Unavailable","title":"Rebooted by the platform"`),
			wantName: "vm-1", wantState: model.StateUnavailable, wantAttr: map[string]any{"title": "Rebooted by the platform"}},
		{name: "stopped by the user is shutoff", raw: rec(vmID, `"availabilityState":"Unavailable","annotationName":"VirtualMachineDeallocationInitiated","context":"Customer Initiated"`),
			wantName: "vm-1", wantState: model.StateShutoff, wantEvent: "VirtualMachineDeallocationInitiated"},
		{name: "unknown", raw: rec(vmID, `"availabilityState":"Unknown"`), wantName: "vm-1", wantState: model.StateUnknown},
		{name: "scale-set VM, any case", raw: rec("/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/web/virtualmachines/12/providers/microsoft.resourcehealth/availabilitystatuses/current", `"availabilityState":"Available"`),
			wantName: "web_12", wantState: model.StateRunning},
		{name: "a scale set itself is not a VM", raw: rec("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/providers/Microsoft.ResourceHealth/availabilityStatuses/current", `"availabilityState":"Available"`), notVM: true},
		{name: "a storage account is not a VM", raw: rec("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x/providers/Microsoft.ResourceHealth/availabilityStatuses/current", `"availabilityState":"Available"`), notVM: true},
		{name: "no id", raw: `{"properties":{"availabilityState":"Available"}}`, wantErr: "record has no id"},
		{name: "not an object", raw: `[1,2]`, wantErr: "decode record"},
		{name: "state of the wrong type", raw: rec(vmID, `"availabilityState":42`), wantErr: "decode record"},
		{name: "state missing", raw: rec(vmID, `"title":"Available"`), wantErr: "properties.availabilityState is missing"},
		{name: "state unknown to the API", raw: rec(vmID, `"availabilityState":"Sleepy"`), wantErr: `properties.availabilityState "Sleepy" is not Available, Unavailable, Degraded or Unknown`},
		{name: "bad time", raw: rec(vmID, `"availabilityState":"Available","reportedTime":"now-ish"`), wantErr: `properties.reportedTime "now-ish" is not an RFC 3339 time`},
		{name: "VM name with a space", raw: rec("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm 1", `"availabilityState":"Available"`), wantErr: `VM name "vm 1" in id is not usable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRecord([]byte(tt.raw))
			switch {
			case tt.notVM:
				if !errors.Is(err, errNotVM) {
					t.Fatalf("err = %v, want errNotVM", err)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if r.name != tt.wantName || r.state != tt.wantState || r.event != tt.wantEvent || r.location != "westeurope" {
				t.Errorf("got name %q state %q event %q site %q, want %q %q %q westeurope", r.name, r.state, r.event, r.location, tt.wantName, tt.wantState, tt.wantEvent)
			}
			for k, v := range tt.wantAttr {
				if r.attrs[k] != v {
					t.Errorf("attrs[%s] = %v, want %v", k, r.attrs[k], v)
				}
			}
		})
	}
}

// FuzzParseRecord: any record either parses into a VM observation that
// the contract accepts, or is refused with an error; it never panics.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(rec(vmID, `"availabilityState":"Unavailable","annotationName":"VirtualMachineCrashed","occuredTime":"2026-11-22T09:55:00Z"`)))
	f.Add([]byte(rec("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/a/virtualMachines/1", `"availabilityState":"Degraded","summary":"`+strings.Repeat("é", 2000)+`"`)))
	f.Add([]byte(`{"id":"/providers/Microsoft.Compute/virtualMachines/x","properties":null}`))
	f.Add([]byte(`{"id":"\u0000"}`))
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := parseRecord(raw)
		if err != nil {
			return
		}
		o := model.Observation{Source: "azure", Kind: model.KindVM, ID: r.name, Site: r.location, State: r.state, Event: r.event, Attrs: r.attrs, TimeGenerated: now}
		if err := o.Validate(now); err != nil {
			t.Fatalf("a parsed record makes an invalid observation: %v\n%s", err, raw)
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"value":[{"id":"x"}],"nextLink":"https://management.azure.com/next"}`))
	f.Add([]byte(`{"value":null}`))
	f.Add([]byte(`  [ ]`))
	f.Add([]byte(`{"value":[1,"two",{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body)
		if err != nil {
			return
		}
		for _, raw := range p.Value {
			_, _ = parseRecord(raw)
		}
	})
}
