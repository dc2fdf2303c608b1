package bot_test

import (
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
)

func TestIncidentView(t *testing.T) {
	tests := []struct {
		name     string
		inc      model.Incident
		text     string
		why      string
		approval bool
		buttons  []string
	}{
		{name: "host hardware fault",
			inc:      bottest.HostFault,
			text:     "[CRITICAL] host-007 (pod-a): host hardware fault — 12 VMs down. Proposed: migrate every VM off host-007 (needs approval). inc-42",
			why:      "set off by the platform; host-007 was failed in that period",
			approval: true,
			buttons: []string{"Acknowledge=ack inc-42", `Silence host 1h=silence host-007 1h "from inc-42"`,
				"Approve=approve inc-42!", "Deny=deny inc-42", "Open runbook=https://kb.example/host-hardware-fault",
				"Open OPS-123=https://jira.example/browse/OPS-123"}},
		{name: "guest crash on a healthy host, acknowledged",
			inc:     bottest.GuestCrash,
			text:    "[HIGH] vm-0100 on host-003 (pod-a): guest fault. Proposed: restart vm-0100 (runs without approval). inc-43",
			why:     "set off by the guest OS; host-003 was healthy in that period; event VirtualMachineCrashed",
			buttons: []string{`Silence VM 1h=silence vm-0100 1h "from inc-43"`}},
		{name: "service down",
			inc:      bottest.ServiceDown,
			text:     "[HIGH] host-011/libvirtd (pod-b): service down. Proposed: restart host-011/libvirtd (needs approval). inc-45",
			why:      "set off by the platform",
			approval: true,
			buttons: []string{"Acknowledge=ack inc-45", `Silence host 1h=silence host-011 1h "from inc-45"`,
				"Approve=approve inc-45!", "Deny=deny inc-45"}},
		{name: "user restart needs nothing",
			inc:     bottest.UserRestart,
			text:    "[LOW] vm-0300 on host-012 (pod-b): restarted by its user. inc-47",
			why:     "set off by the VM's user",
			buttons: []string{"Acknowledge=ack inc-47", `Silence VM 1h=silence vm-0300 1h "from inc-47"`}},
		{name: "resolved has no buttons to act",
			inc:  bottest.Resolved,
			text: "[RESOLVED] vm-0007 on host-002 (pod-a): guest fault — lasted 23m. inc-40",
			why:  "set off by the guest OS"},
		{name: "unclassified with little data",
			inc:     model.Incident{ID: "inc-1", Status: model.StatusFiring, Cause: "odd-thing"},
			text:    "[INCIDENT] inc-1: odd thing. inc-1",
			buttons: []string{"Acknowledge=ack inc-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bot.NewIncidentView(tt.inc)
			if got := v.Text(); got != tt.text {
				t.Errorf("Text() =\n%q, want\n%q", got, tt.text)
			}
			if got := v.Why(); got != tt.why {
				t.Errorf("Why() = %q, want %q", got, tt.why)
			}
			if v.NeedsApproval != tt.approval {
				t.Errorf("NeedsApproval = %v", v.NeedsApproval)
			}
			var buttons []string
			for _, a := range v.Actions {
				s := a.Label + "=" + a.Command + a.URL
				if a.Confirm != "" && a.Style == bot.StyleDanger {
					s += "!"
				}
				buttons = append(buttons, s)
			}
			if !slices.Equal(buttons, tt.buttons) {
				t.Errorf("buttons = %q, want %q", buttons, tt.buttons)
			}
			// Every button command is a command the parser accepts.
			for _, a := range v.Actions {
				if a.Command == "" {
					continue
				}
				if _, err := bot.ParseCommand(a.Command); err != nil {
					t.Errorf("button %q carries %q: %v", a.Label, a.Command, err)
				}
			}
		})
	}
}

func TestIncidentLine(t *testing.T) {
	got := bot.IncidentLine(bottest.GuestCrash, bottest.Now.Add(time.Hour))
	want := "inc-43 high firing · vm-0100 on host-003 (pod-a): guest fault · acked by alice · 1h4m"
	if got != want {
		t.Errorf("IncidentLine = %q, want %q", got, want)
	}
}
