package knowledge

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vmtriage/vmtriage/internal/model"
)

func matchKB(t *testing.T) *KB {
	t.Helper()
	rb := func(front string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("---\ntitle: T\n" + front + "---\ntext\n")}
	}
	fsys := fstest.MapFS{
		"by-rule.md":      rb("applies_to:\n  rules: [vm-crash-on-failing-host]\n"),
		"by-event.md":     rb("applies_to:\n  events: [VirtualMachineHostCrashed]\n"),
		"by-cause.md":     rb("applies_to:\n  causes: [host-hardware-fault]\n"),
		"by-component.md": rb("applies_to:\n  components: [libvirtd, prometheus]\n"),
		// Two weaker matches never beat one stronger one.
		"cause-and-component.md": rb("applies_to:\n  causes: [host-hardware-fault, service-down]\n  components: [libvirtd]\n"),
		"unrelated.md":           rb("applies_to:\n  rules: [azure-preempted]\n  causes: [spot-preemption]\n"),
		"no-applies-to.md":       rb("tags: [misc]\n"),
	}
	rbs, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := newKB(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.install(rbs); err != nil {
		t.Fatal(err)
	}
	return kb
}

func TestMatch(t *testing.T) {
	kb := matchKB(t)
	tests := []struct {
		name string
		inc  model.Incident
		want string
	}{
		{"rule beats event beats cause", model.Incident{Rule: "vm-crash-on-failing-host", Event: "VirtualMachineHostCrashed", Cause: "host-hardware-fault"},
			"by-rule by-event by-cause cause-and-component"},
		{"cause and component together still below an event", model.Incident{Event: "VirtualMachineHostCrashed", Cause: "host-hardware-fault", Kind: model.KindService, Subject: "host-007/libvirtd"},
			"by-event cause-and-component by-cause by-component"},
		{"component of a service incident", model.Incident{Rule: "service-down", Cause: "service-down", Kind: model.KindService, Subject: "host-007/libvirtd"},
			"cause-and-component by-component"},
		{"component of a source incident", model.Incident{Rule: "source-stopped-reporting", Kind: "source", Subject: "prometheus"},
			"by-component"},
		{"a VM's name is not a component", model.Incident{Kind: model.KindVM, Subject: "libvirtd"}, ""},
		{"nothing applies", model.Incident{Rule: "vm-guest-crash", Cause: "guest-crash"}, ""},
		{"empty incident matches nothing", model.Incident{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, rb := range kb.Match(tt.inc) {
				got = append(got, rb.Slug)
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("Match = %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestLinksAreCappedAndFitTheEngine(t *testing.T) {
	kb := matchKB(t)
	// rules.Options.Runbooks has this type; the engine calls it per change.
	var runbooks func(*model.Incident) []string = kb.Links
	inc := &model.Incident{Rule: "vm-crash-on-failing-host", Event: "VirtualMachineHostCrashed", Cause: "host-hardware-fault"}
	got := strings.Join(runbooks(inc), " ")
	if want := "/kb/by-rule /kb/by-event /kb/by-cause"; got != want {
		t.Fatalf("Links = %q, want %q", got, want)
	}
	if got := runbooks(&model.Incident{Rule: "unknown"}); got != nil {
		t.Fatalf("Links of an unmatched incident = %v, want nil", got)
	}
}
