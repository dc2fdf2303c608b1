package knowledge

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func starterKB(t testing.TB) *KB {
	t.Helper()
	kb, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kb
}

// The runbook a person means comes first for what they would type at 3 a.m.
func TestSearchRanksTheRelevantRunbookFirst(t *testing.T) {
	kb := starterKB(t)
	tests := []struct {
		query string
		want  string
	}{
		{"ecc memory", "host-hardware-fault"},
		{"ECC Memory errors", "host-hardware-fault"},
		{"libvirtd down", "service-down"},
		{"nova-compute", "service-down"},
		{"planned maintenance", "planned-maintenance"},
		{"maintenance reboot", "planned-maintenance"},
		{"kernel panic", "guest-crash"},
		{"guest crashed", "guest-crash"},
		{"spot evicted", "spot-preemption"},
		{"preempted", "spot-preemption"},
		{"iscsi multipath", "external-path-unreachable"},
		{"storage unreachable", "external-path-unreachable"},
		{"heartbeat silent vm", "stopped-reporting"},
		{"collector prometheus stopped", "source-stopped-reporting"},
		{"redeploy deadline", "degraded-hardware"},
		{"LiveMigrationFailure", "platform-unplanned"},
		{"VirtualMachinePreempted", "spot-preemption"},
		{"cloud-init", "provisioning-timeout"},
		{"activity log caller", "user-operation"},
		{"who restarted my vm", "user-operation"},
		{"host facts missing", "vm-crash-host-unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			hits := kb.Search(tt.query, 3)
			if len(hits) == 0 {
				t.Fatalf("Search(%q) found nothing", tt.query)
			}
			if hits[0].Runbook.Slug != tt.want {
				t.Fatalf("Search(%q) = %s, want %s first", tt.query, slugs(hits), tt.want)
			}
			for i := 1; i < len(hits); i++ {
				if hits[i].Score > hits[i-1].Score {
					t.Fatalf("hits not in score order: %s", slugs(hits))
				}
			}
		})
	}
}

func manyWords(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = fmt.Sprintf("unknownword%d", i)
	}
	return strings.Join(w, " ")
}

func slugs(hits []Hit) string {
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "%s(%.2f) ", h.Runbook.Slug, h.Score)
	}
	return b.String()
}

func TestSearchEdges(t *testing.T) {
	kb := starterKB(t)
	tests := []struct {
		name  string
		query string
		n     int
		want  int
	}{
		{"empty query", "", 5, 0},
		{"only stop words", "the and of", 5, 0},
		{"only punctuation", "?!-- //", 5, 0},
		{"unknown words", "zebra xylophone", 5, 0},
		{"n caps the hits", "host", 2, 2},
		{"n zero", "host", 0, 0},
		{"unknown word next to a known one", "zebra libvirtd", 5, 3}, // three runbooks mention libvirtd
		{"words beyond the 32nd are ignored", strings.Repeat("zebra ", 5) + manyWords(40) + " libvirtd", 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kb.Search(tt.query, tt.n); len(got) != tt.want {
				t.Fatalf("Search(%q, %d) gave %d hits (%s), want %d", tt.query, tt.n, len(got), slugs(got), tt.want)
			}
		})
	}
}

// A title or tag match outweighs a passing mention in the body.
func TestSearchWeighsTitleAndTags(t *testing.T) {
	rbs := []Runbook{
		{Slug: "mentions", Title: "Something else", Body: "Long text about many things. " + strings.Repeat("filler words here. ", 20) + "It mentions zebra once."},
		{Slug: "titled", Title: "Zebra handling", Body: strings.Repeat("filler words here. ", 20)},
		{Slug: "tagged", Title: "Other", Tags: []string{"zebra"}, Body: strings.Repeat("filler words here. ", 20)},
	}
	ix := buildIndex(rbs)
	hits := ix.search(rbs, "zebra", 3)
	if got := slugs(hits); !strings.HasPrefix(got, "titled(") || !strings.Contains(got, ") tagged(") {
		t.Fatalf("Search(zebra) = %s, want titled, tagged, mentions", got)
	}
}

// The excerpts of the starter set for typical queries: one line each, cut
// around the match. Rewrite with -update after changing a runbook.
func TestExcerptGolden(t *testing.T) {
	kb := starterKB(t)
	queries := []string{"ecc memory", "libvirtd down", "planned maintenance", "edac-util", "who restarted the vm",
		"paused ioerror", "redeploy deadline", "Secure Boot", "max price", "oom killed"}
	var b strings.Builder
	for _, q := range queries {
		fmt.Fprintf(&b, "## %s\n", q)
		for _, h := range kb.Search(q, 3) {
			if strings.Contains(h.Excerpt, "\n") {
				t.Errorf("excerpt of %s for %q spans lines: %q", h.Runbook.Slug, q, h.Excerpt)
			}
			if n := len([]rune(h.Excerpt)); n > ExcerptLen {
				t.Errorf("excerpt of %s for %q is %d characters", h.Runbook.Slug, q, n)
			}
			fmt.Fprintf(&b, "%s: %s\n", h.Runbook.Slug, h.Excerpt)
		}
	}
	golden(t, "excerpts.golden", b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
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
		t.Fatalf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestCut(t *testing.T) {
	long := strings.Repeat("alpha ", 30) + "TARGET word " + strings.Repeat("omega ", 40)
	tests := []struct {
		name string
		line string
		at   int
		want string
	}{
		{"short line unchanged", "a short line", 2, "a short line"},
		{"match near the start", long, 0, "alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha…"},
		{"match in the middle keeps it in view", long, strings.Index(long, "TARGET"),
			"…alpha alpha alpha alpha alpha alpha TARGET word omega omega omega omega omega omega omega omega omega omega omega omega omega omega omega omega omega omega…"},
		{"characters, not bytes", strings.Repeat("é", 200), 0, strings.Repeat("é", ExcerptLen-2) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cut(tt.line, tt.at)
			if got != tt.want {
				t.Fatalf("cut = %q\nwant  %q", got, tt.want)
			}
			if n := len([]rune(got)); n > ExcerptLen {
				t.Fatalf("cut gave %d characters", n)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"The VM crashed; crashes, crashing!", "vm crash crash crash"},
		{"memories memory", "memory memory"},
		{"planned planning plan plane", "plan plan plan plane"},
		{"degraded degrade services service", "degrad degrad servic servic"},
		{"stated state filing file", "state state file file"},
		{"need speed status analysis", "need speed status analysis"},
		{"libvirtd nova-compute edac-util", "libvirtd nova comput edac util"},
		{"ECC MCE PSU", "ecc mce psu"},
		{"VirtualMachineCrashed", "virtualmachinecrash virtual machin crash"},
		{"iSCSI", "iscsi scsi"}, // "i" is a stop word
		{"Größe prüfen", "größe prüfen"},
		{"is a the of", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := strings.Join(tokens(tt.in), " "); got != tt.want {
				t.Fatalf("tokens(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPlainLines(t *testing.T) {
	md := "## What it means\n\nA **bold** `code` and\n[a link](x.md) wrapped.\n\n```sh\nvirsh list --all | grep vm\n```\n" +
		"- item one\n  continued\n- item two\n1. first step\n\n| a | b |\n|---|---|\n> quoted\n> more\n"
	var got []string
	for _, l := range plainLines(md) {
		got = append(got, fmt.Sprintf("%v:%s", l.heading, l.text))
	}
	want := "true:What it means|false:A bold code and a link wrapped.|false:virsh list --all | grep vm|" +
		"false:item one continued|false:item two|false:first step|false:a b|false:quoted more"
	if strings.Join(got, "|") != want {
		t.Fatalf("plainLines =\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

// Keeping only the best n while scanning gives the first n of the full
// ranking, ties broken by slug.
func TestSearchTopNIsPrefixOfFullRanking(t *testing.T) {
	rbs := syntheticRunbooks(t, 300)
	ix := buildIndex(rbs)
	for _, q := range []string{"ecc memory", "libvirtd down on the host", "migrate"} {
		all := ix.search(rbs, q, len(rbs))
		for i := 1; i < len(all); i++ {
			a, b := all[i-1], all[i]
			if a.Score < b.Score || (a.Score == b.Score && a.Runbook.Slug > b.Runbook.Slug) {
				t.Fatalf("%q: full ranking out of order at %d: %s(%v) before %s(%v)", q, i, a.Runbook.Slug, a.Score, b.Runbook.Slug, b.Score)
			}
		}
		for _, n := range []int{1, 5, 17} {
			top := ix.search(rbs, q, n)
			if len(top) != min(n, len(all)) {
				t.Fatalf("%q n=%d: %d hits", q, n, len(top))
			}
			for i := range top {
				if top[i].Runbook.Slug != all[i].Runbook.Slug {
					t.Fatalf("%q n=%d: hit %d is %s, full ranking has %s", q, n, i, top[i].Runbook.Slug, all[i].Runbook.Slug)
				}
			}
		}
	}
}
