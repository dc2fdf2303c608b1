package outage

import (
	"bytes"
	"image/color"
	"image/png"
	"testing"
)

// TestWriteChart decodes the PNG and checks that each day's bar is stacked
// in the attributions' colours, tallest day reaching the top of the scale.
func TestWriteChart(t *testing.T) {
	days := []Day{
		{Date: "2026-11-22", Minutes: Minutes{PlatformUnplanned: 60, Guest: 40}},
		{Date: "2026-11-23", Minutes: Minutes{User: 50}},
		{Date: "2026-11-24"},
	}
	var buf bytes.Buffer
	if err := WriteChart(&buf, days); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("decode the chart: %v", err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
		t.Fatalf("chart is %v, want %dx%d", b, chartW, chartH)
	}
	slot := float64(chartW-marginR-marginL) / 3
	center := func(i int) int { return marginL + int(slot*float64(i)+slot/2) }
	bottom, plotH := chartH-marginB, chartH-marginB-marginT // scale tops at 100 minutes
	at := func(i int, fraction float64) color.RGBA {
		r, g, b, a := img.At(center(i), bottom-int(float64(plotH)*fraction)).RGBA()
		return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
	}
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	for _, tc := range []struct {
		name     string
		day      int
		fraction float64
		want     color.RGBA
	}{
		{"day 1 bottom is unplanned (stacked first)", 0, 0.3, chartColors[PlatformUnplanned.Rank()]},
		{"day 1 top is guest", 0, 0.8, chartColors[Guest.Rank()]},
		{"day 1 reaches the top", 0, 0.98, chartColors[Guest.Rank()]},
		{"day 2 is user up to half", 1, 0.45, chartColors[User.Rank()]},
		{"day 2 stops at half", 1, 0.55, white},
		{"day 3 has no bar", 2, 0.1, white},
	} {
		if got := at(tc.day, tc.fraction); got != tc.want {
			t.Errorf("%s: pixel %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 0}, {0.2, 1}, {1, 1}, {60, 100}, {100, 100}, {101, 200}, {1240, 2000}, {4001, 5000}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
