package tickets

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name.golden, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// kinds are the default incident kinds, one per default rule family.
func kinds() []struct {
	name   string
	inc    model.Incident
	period *model.HostPeriod
} {
	now := bottest.Now
	preemptive := model.Incident{
		ID: "inc-50", Fingerprint: "fp-host-030", Rule: "host-fault-persistent",
		Status: model.StatusFiring, Severity: model.SeverityHigh, Cause: "host-hardware-fault-persistent",
		Trigger: model.TriggerPlatform, Action: model.ActionMigrateHost, Approval: model.ApprovalPending,
		Kind: model.KindHost, Subject: "host-030", Host: "host-030", Site: "pod-c",
		VMs: []string{"vm-0700", "vm-0701", "vm-0702"}, HostState: string(model.HostDegraded),
		Summary:   "host-030 has had the same hardware fault for 3 periods; move its 3 running VMs before they crash",
		StartedAt: now.Add(-3 * time.Minute), FiringAt: now.Add(-3 * time.Minute), Level: 1,
		Targets:  []string{"channel:#ops", "usergroup:oncall"},
		Runbooks: []string{"https://kb.example/runbooks/host-hardware-fault"}, Version: 2,
	}
	preemption := model.Incident{
		ID: "inc-51", Fingerprint: "fp-vm-0800", Rule: "azure-preempted",
		Status: model.StatusFiring, Severity: model.SeverityLow, Cause: "spot-preemption",
		Trigger: model.TriggerPlatform, Action: model.ActionNone, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-0800", Host: "host-040", Site: "pod-a", VMs: []string{"vm-0800"},
		Event:     "VirtualMachinePreempted",
		StartedAt: now.Add(-90 * time.Second), FiringAt: now.Add(-90 * time.Second), Version: 1,
		Runbooks: []string{"https://kb.example/runbooks/spot-preemption"},
	}
	stopped := model.Incident{
		ID: "inc-52", Fingerprint: "fp-src-libvirt", Rule: "host-stopped-reporting",
		Status: model.StatusResolved, Severity: model.SeverityHigh, Cause: "stopped-reporting",
		Trigger: model.TriggerPlatform, Action: model.ActionNotify, Approval: model.ApprovalNotRequired,
		Kind: model.KindHost, Subject: "host-050", Host: "host-050", Site: "pod-b",
		Summary:   "host-050 stopped reporting 10m ago | last seen 09:50 [check the collector]",
		StartedAt: now.Add(-40 * time.Minute), FiringAt: now.Add(-40 * time.Minute),
		ResolvedAt: now.Add(-5 * time.Minute), Level: 2, AckedBy: "U0BOB*", AckedAt: now.Add(-30 * time.Minute),
		Runbooks: []string{"https://kb.example/runbooks/stopped-reporting"}, Version: 6,
	}
	hostPeriod := &model.HostPeriod{Start: now.Add(-10 * time.Minute).Truncate(time.Minute), State: model.HostFailed,
		Reasons: []string{"ecc_uncorrected=3", "mce=1"}}
	storagePeriod := &model.HostPeriod{Start: now.Add(-6 * time.Minute).Truncate(time.Minute), State: model.HostDegraded,
		Reasons: []string{"storage_reachable=false"}}
	withServices := bottest.HostFault
	withServices.Services = []model.ServiceImpact{
		{Service: "ledger", Team: "team-ledger", Instances: 1, Down: 1, Hit: 1, LastInSites: []string{"pod-a"}},
		{Service: "payments-api", Team: "team-pay", Instances: 6, Down: 3, Hit: 3},
		{Service: "web|[x]", Instances: 4, Down: 1, Hit: 1},
	}
	guest := bottest.GuestCrash
	guest.Runbooks = []string{"https://kb.example/runbooks/guest-crash"}
	return []struct {
		name   string
		inc    model.Incident
		period *model.HostPeriod
	}{
		{"guest-crash", guest, nil},
		{"host-hardware-fault", bottest.HostFault, hostPeriod},
		{"host-hardware-fault-services", withServices, hostPeriod},
		{"preemptive-hardware", preemptive, nil},
		{"storage-path", bottest.StorageLoss, storagePeriod},
		{"service-down", bottest.ServiceDown, nil},
		{"planned-maintenance", bottest.Maintenance, nil},
		{"preemption", preemption, nil},
		{"stopped-reporting", stopped, nil},
	}
}

func TestRenderDefaultKinds(t *testing.T) {
	r, err := newRenderer("", "", DefaultMaxDescription)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			labels := []string{Label, FingerprintLabel(&k.inc), IncidentLabel(&k.inc)}
			d := ticketData(k.inc, k.period, labels, bottest.Now)
			summary, err := r.Summary(d)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := r.Description(d)
			if err != nil {
				t.Fatal(err)
			}
			if n := utf8.RuneCountInString(summary); n > maxSummary || strings.ContainsAny(summary, "\r\n") {
				t.Errorf("summary of %d characters or with a line break: %q", n, summary)
			}
			golden(t, k.name, "summary: "+summary+"\n\n"+desc+"\n")
		})
	}
}

func TestSummaryLimitCountsCharacters(t *testing.T) {
	r, err := newRenderer("", "", DefaultMaxDescription)
	if err != nil {
		t.Fatal(err)
	}
	inc := bottest.GuestCrash
	inc.Summary = strings.Repeat("é", 300) + "\nsecond line"
	s, err := r.Summary(ticketData(inc, nil, nil, bottest.Now))
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(s); n != maxSummary {
		t.Fatalf("summary is %d characters; want exactly %d (cut by characters, not bytes)", n, maxSummary)
	}
	if !strings.HasSuffix(s, "…") || !utf8.ValidString(s) {
		t.Fatalf("cut summary %q does not end with … or is not valid UTF-8", s)
	}
}

func TestDescriptionTrimmedWithNote(t *testing.T) {
	tests := []struct {
		name string
		max  int
		vms  int
		trim bool
	}{
		{"fits", 30000, 12, false},
		{"cut at 1000", 1000, 100, true},
		{"cut at 500", 500, 100, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newRenderer("", "", tc.max)
			if err != nil {
				t.Fatal(err)
			}
			inc := bottest.HostFault
			inc.VMs = nil
			for i := range tc.vms {
				inc.VMs = append(inc.VMs, "vm-ü"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
			}
			d, err := r.Description(ticketData(inc, nil, nil, bottest.Now))
			if err != nil {
				t.Fatal(err)
			}
			n := utf8.RuneCountInString(d)
			if n > tc.max {
				t.Fatalf("description has %d characters; limit %d", n, tc.max)
			}
			trimmed := strings.Contains(d, "_(Trimmed: ")
			if trimmed != tc.trim {
				t.Fatalf("trimmed = %v; want %v\n%s", trimmed, tc.trim, d)
			}
			if trimmed && !strings.Contains(d, "inc-42") {
				t.Fatalf("the trim note does not name the incident:\n%s", d)
			}
		})
	}
}

func TestEscapeWiki(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "vm-0042 on host-007", "vm-0042 on host-007"},
		{"link", "[click|https://evil]", `\[click\|https://evil\]`},
		{"macro", "{code}x{code}", `\{code\}x\{code\}`},
		{"bold and image", "*a* !img.png!", `\*a\* \!img.png\!`},
		{"newlines", "a\nb\r\nc", "a b  c"},
		{"backslash", `a\b`, `a\\b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := escapeWiki(tc.in); got != tc.want {
				t.Fatalf("escapeWiki(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRunbookLink(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"named by last segment", "https://kb.example/runbooks/guest-crash", "[guest-crash|https://kb.example/runbooks/guest-crash]"},
		{"link breakers encoded, name escaped", "https://kb.example/a|b]c", `[a\|b\]c|https://kb.example/a%7Cb%5Dc]`},
		{"not a URL", "javascript:alert(1)", "javascript:alert(1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runbookLink(tc.in)
			if got != tc.want {
				t.Fatalf("runbookLink(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestQuoteJQL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "OPS", `"OPS"`},
		{"quote", `O"PS`, `"O\"PS"`},
		{"injection", `OPS" OR project = "X`, `"OPS\" OR project = \"X"`},
		{"backslash", `a\`, `"a\\"`},
		{"newline", "a\nb", `"a\nb"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := QuoteJQL(tc.in); got != tc.want {
				t.Fatalf("QuoteJQL(%q) = %s; want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	a := bottest.HostFault
	b := a
	b.ID, b.StartedAt = "inc-99", a.StartedAt.Add(time.Hour) // a recurrence
	if FingerprintLabel(&a) != FingerprintLabel(&b) {
		t.Error("a recurrence (same fingerprint) has another fingerprint label")
	}
	if IncidentLabel(&a) == IncidentLabel(&b) {
		t.Error("two incidents share an incident label")
	}
	for _, l := range []string{FingerprintLabel(&a), IncidentLabel(&a)} {
		if len(l) > 255 || strings.ContainsAny(l, " \t\n") || !strings.HasPrefix(l, "vmtriage-") {
			t.Errorf("label %q is not a valid Jira label", l)
		}
	}
	noFP := bottest.GuestCrash // no fingerprint: keyed by id
	other := noFP
	other.ID = "inc-44"
	if FingerprintLabel(&noFP) == FingerprintLabel(&other) {
		t.Error("incidents without fingerprint share a label")
	}
}
