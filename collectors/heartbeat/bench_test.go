package heartbeat

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDecode measures decoding one request of 1,000 heartbeats.
func BenchmarkDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 1000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"computer":"vm-%05d","time_generated":"2026-11-22T09:59:58Z","site":"pod-a"}`, i)
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body, "heartbeat/bench", t0, DefaultMaxBatch); err != nil {
			b.Fatal(err)
		}
	}
}
