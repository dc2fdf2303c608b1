package outage

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
)

// Colours of the attributions in charts, in the order of Attributions.
var chartColors = []color.RGBA{
	{0x3b, 0x82, 0xf6, 0xff}, // platform-planned: blue
	{0xdc, 0x26, 0x26, 0xff}, // platform-unplanned: red
	{0xf5, 0x9e, 0x0b, 0xff}, // user: amber
	{0x8b, 0x5c, 0xf6, 0xff}, // guest: violet
	{0x9c, 0xa3, 0xaf, 0xff}, // unknown: grey
}

// ChartColor returns the CSS colour of an attribution, as the chart draws
// it, so that a page's legend matches.
func ChartColor(a Attribution) string {
	c := chartColors[a.Rank()]
	return "#" + hex2(c.R) + hex2(c.G) + hex2(c.B)
}

func hex2(b uint8) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// Chart sizes.
const (
	chartW, chartH               = 820, 320
	marginL, marginR             = 56, 230
	marginT, marginB             = 20, 36
	glyphScale                   = 2
	glyphW, glyphH, glyphSpacing = 3, 5, 1
)

// WriteChart draws downtime by attribution per day as a stacked bar chart,
// PNG-encoded to w, with the standard library only: axes, minute ticks,
// a date under the bars (as many as fit) and a legend.
func WriteChart(w io.Writer, days []Day) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	plot := image.Rect(marginL, marginT, chartW-marginR, chartH-marginB)
	axis := color.RGBA{0x37, 0x41, 0x51, 0xff}
	grid := color.RGBA{0xe5, 0xe7, 0xeb, 0xff}

	maxMin := 0.0
	for _, d := range days {
		maxMin = math.Max(maxMin, d.Minutes.Total())
	}
	top := niceCeil(maxMin)
	for i := 0; i <= 4; i++ {
		y := plot.Max.Y - int(float64(plot.Dy())*float64(i)/4)
		fill(img, image.Rect(plot.Min.X, y, plot.Max.X, y+1), grid)
		label := strconv.FormatFloat(top*float64(i)/4, 'f', -1, 64)
		if len(label) > 7 {
			label = strconv.FormatFloat(top*float64(i)/4, 'f', 0, 64)
		}
		text(img, plot.Min.X-6-textWidth(label), y-glyphH*glyphScale/2, label, axis)
	}
	text(img, 4, 4, "MIN", axis)

	if n := len(days); n > 0 {
		slot := float64(plot.Dx()) / float64(n)
		barW := max(1, int(slot*0.7))
		labelEvery := max(1, int(math.Ceil(float64(textWidth("00-00")+8)/slot)))
		for i, d := range days {
			x := plot.Min.X + int(slot*float64(i)+(slot-float64(barW))/2)
			y := plot.Max.Y
			for k, a := range Attributions {
				m := d.Minutes.Get(a)
				if m <= 0 || top == 0 {
					continue
				}
				h := int(math.Round(float64(plot.Dy()) * m / top))
				if h < 1 {
					h = 1
				}
				fill(img, image.Rect(x, y-h, x+barW, y), chartColors[k])
				y -= h
			}
			if i%labelEvery == 0 && len(d.Date) == 10 {
				lbl := d.Date[5:]
				cx := x + barW/2 - textWidth(lbl)/2
				text(img, cx, plot.Max.Y+8, lbl, axis)
			}
		}
	}
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y+1), axis)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), axis)

	lx, ly := chartW-marginR+16, marginT
	for k, a := range Attributions {
		y := ly + k*22
		fill(img, image.Rect(lx, y, lx+14, y+14), chartColors[k])
		text(img, lx+20, y+2, strings.ToUpper(string(a)), axis)
	}
	return png.Encode(w, img)
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (60 → 100), with
// 0 staying 0 and anything under 1 becoming 1.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	if v < 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func textWidth(s string) int {
	return len(s) * (glyphW + glyphSpacing) * glyphScale
}

// text draws s with a 3×5 pixel font (digits, capitals, - . : %), scaled.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		if g, ok := glyphs[r]; ok {
			for row := 0; row < glyphH; row++ {
				for col := 0; col < glyphW; col++ {
					if g[row][col] == '#' {
						fill(img, image.Rect(x+col*glyphScale, y+row*glyphScale, x+(col+1)*glyphScale, y+(row+1)*glyphScale), c)
					}
				}
			}
		}
		x += (glyphW + glyphSpacing) * glyphScale
	}
}

var glyphs = map[rune][glyphH]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", ".#.", ".#.", ".#."},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'-': {"...", "...", "###", "...", "..."}, '.': {"...", "...", "...", "...", ".#."},
	':': {"...", ".#.", "...", ".#.", "..."}, '%': {"#.#", "..#", ".#.", "#..", "#.#"},
	'A': {"###", "#.#", "###", "#.#", "#.#"}, 'B': {"##.", "#.#", "##.", "#.#", "##."},
	'C': {"###", "#..", "#..", "#..", "###"}, 'D': {"##.", "#.#", "#.#", "#.#", "##."},
	'E': {"###", "#..", "##.", "#..", "###"}, 'F': {"###", "#..", "##.", "#..", "#.."},
	'G': {"###", "#..", "#.#", "#.#", "###"}, 'H': {"#.#", "#.#", "###", "#.#", "#.#"},
	'I': {"###", ".#.", ".#.", ".#.", "###"}, 'K': {"#.#", "#.#", "##.", "#.#", "#.#"},
	'L': {"#..", "#..", "#..", "#..", "###"}, 'M': {"#.#", "###", "###", "#.#", "#.#"},
	'N': {"##.", "#.#", "#.#", "#.#", "#.#"}, 'O': {"###", "#.#", "#.#", "#.#", "###"},
	'P': {"###", "#.#", "###", "#..", "#.."}, 'R': {"##.", "#.#", "##.", "#.#", "#.#"},
	'S': {"###", "#..", "###", "..#", "###"}, 'T': {"###", ".#.", ".#.", ".#.", ".#."},
	'U': {"#.#", "#.#", "#.#", "#.#", "###"}, 'W': {"#.#", "#.#", "###", "###", "#.#"},
	'Y': {"#.#", "#.#", ".#.", ".#.", ".#."},
}
