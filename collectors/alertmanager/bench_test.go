package alertmanager

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkWebhook measures decoding and mapping one webhook of 200
// firing host alerts.
func BenchmarkWebhook(b *testing.B) {
	m, err := LoadMapping(filepath.Join("testdata", "mapping.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Options{Mapping: m, Sink: &sink{}})
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString(`{"version":"4","groupKey":"g","status":"firing","receiver":"vmtriage","alerts":[`)
	for i := range 200 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"status":"firing","labels":{"alertname":"NodeEDACUncorrectableErrors","instance":"host-%03d:9100","site":"pod-a","job":"node"},"annotations":{"summary":"x"},"startsAt":"2026-11-22T09:59:10Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f%d"}`, i, i)
	}
	sb.WriteString("]}")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := DecodePayload(body)
		if err != nil {
			b.Fatal(err)
		}
		if obs, _ := h.Observations(p, t0); len(obs) != 200 {
			b.Fatalf("%d observations", len(obs))
		}
	}
}
