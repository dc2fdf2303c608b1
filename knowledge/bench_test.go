package knowledge

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// syntheticRunbooks makes n runbooks of about 400 words drawn from the
// starter set's own vocabulary (so term frequencies look like real ones),
// with a fixed seed.
func syntheticRunbooks(tb testing.TB, n int) []Runbook {
	tb.Helper()
	starter, err := Starter()
	if err != nil {
		tb.Fatal(err)
	}
	var vocab []string
	for _, rb := range starter {
		vocab = append(vocab, strings.Fields(rb.Body)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = vocab[rng.IntN(len(vocab))]
		}
		return strings.Join(w, " ")
	}
	out := make([]Runbook, n)
	for i := range out {
		var body strings.Builder
		for p := 0; p < 8; p++ {
			fmt.Fprintf(&body, "## %s\n\n%s\n\n", words(3), words(50))
		}
		out[i] = Runbook{
			Slug: fmt.Sprintf("rb-%04d", i), Path: fmt.Sprintf("rb-%04d.md", i), Title: words(5),
			Tags:      strings.Fields(words(4)),
			AppliesTo: AppliesTo{Rules: []string{fmt.Sprintf("rule-%d", i%50)}, Causes: []string{fmt.Sprintf("cause-%d", i%20)}},
			Body:      body.String(),
		}
	}
	return out
}

func benchKB(b *testing.B, rbs []Runbook) *KB {
	b.Helper()
	kb, err := newKB(Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := kb.install(rbs); err != nil {
		b.Fatal(err)
	}
	return kb
}

func BenchmarkSearch(b *testing.B) {
	starter, err := Starter()
	if err != nil {
		b.Fatal(err)
	}
	sets := []struct {
		name string
		rbs  []Runbook
	}{
		{"starter", starter},
		{"synthetic-1000", syntheticRunbooks(b, 1000)},
	}
	for _, s := range sets {
		kb := benchKB(b, s.rbs)
		for _, q := range []string{"ecc memory", "libvirtd down on the host after restart"} {
			b.Run(s.name+"/"+strings.ReplaceAll(q, " ", "_"), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if len(kb.Search(q, 5)) == 0 {
						b.Fatal("no hits")
					}
				}
			})
		}
	}
}

func BenchmarkBuildIndex(b *testing.B) {
	rbs := syntheticRunbooks(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		buildIndex(rbs)
	}
}

func BenchmarkMatch(b *testing.B) {
	kb := benchKB(b, syntheticRunbooks(b, 1000))
	inc := model.Incident{Rule: "rule-7", Cause: "cause-7"}
	b.ReportAllocs()
	for b.Loop() {
		if len(kb.Links(&inc)) == 0 {
			b.Fatal("no links")
		}
	}
}
