package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// ScrapeTarget is an exposition-format endpoint of one host.
type ScrapeTarget struct {
	// URL is the endpoint, e.g. http://10.0.0.7:9100/metrics.
	URL string
	// Host names the host; default the URL's host without the port.
	Host string
	// Site overrides Options.Site for this host.
	Site string
}

// rule is a ScrapeRule with its matchers compiled.
type rule struct {
	ScrapeRule
	match, exclude map[string]*regexp.Regexp
}

func compileRule(r ScrapeRule) (rule, error) {
	out := rule{ScrapeRule: r, match: map[string]*regexp.Regexp{}, exclude: map[string]*regexp.Regexp{}}
	if _, ok := factBool[r.Attr]; !ok {
		return out, fmt.Errorf("attr %q is not a fact (want one of %v)", r.Attr, Facts())
	}
	if r.Metric == "" {
		return out, fmt.Errorf("attr %s: metric is required", r.Attr)
	}
	switch r.Agg {
	case "sum", "max", "min":
	default:
		return out, fmt.Errorf("attr %s: agg %q is not sum, max or min", r.Attr, r.Agg)
	}
	if r.Negate && !factBool[r.Attr] {
		return out, fmt.Errorf("attr %s: negate applies to health flags only", r.Attr)
	}
	for _, set := range []struct {
		from map[string]string
		to   map[string]*regexp.Regexp
	}{{r.Match, out.match}, {r.Exclude, out.exclude}} {
		for label, expr := range set.from {
			re, err := regexp.Compile("^(?:" + expr + ")$")
			if err != nil {
				return out, fmt.Errorf("attr %s: label %s: %w", r.Attr, label, err)
			}
			set.to[label] = re
		}
	}
	return out, nil
}

// scrape reads one target's metric families.
func (c *Collector) scrape(ctx context.Context, target string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", `text/plain;version=0.0.4;q=1,*/*;q=0.1`)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body := &limitedReader{r: resp.Body, n: maxBodyBytes}
	return decodeExposition(body, expfmt.ResponseFormat(resp.Header))
}

// decodeExposition reads every metric family of an exposition (text, or
// delimited protobuf when the server chose it).
func decodeExposition(r io.Reader, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(r, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return fams, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode exposition: %w", err)
		}
		fams[mf.GetName()] = mf
	}
}

// limitedReader fails, rather than truncating silently, past n bytes.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("exposition larger than %d bytes", maxBodyBytes)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// apply aggregates the samples r keeps; ok is false when none matched.
// bad counts samples that are not finite numbers.
func (r *rule) apply(fams map[string]*dto.MetricFamily) (v float64, ok bool, bad int) {
	mf := fams[r.Metric]
	if mf == nil {
		return 0, false, 0
	}
	for _, m := range mf.GetMetric() {
		if !r.keeps(m) {
			continue
		}
		x, good := metricValue(m)
		if !good {
			bad++
			continue
		}
		switch {
		case !ok:
			v = x
		case r.Agg == "sum":
			v += x
		case r.Agg == "max":
			v = max(v, x)
		case r.Agg == "min":
			v = min(v, x)
		}
		ok = true
	}
	return v, ok, bad
}

func (r *rule) keeps(m *dto.Metric) bool {
	if len(r.match) == 0 && len(r.exclude) == 0 {
		return true
	}
	seen := 0
	for _, lp := range m.GetLabel() {
		if re, ok := r.match[lp.GetName()]; ok {
			if !re.MatchString(lp.GetValue()) {
				return false
			}
			seen++
		}
		if re, ok := r.exclude[lp.GetName()]; ok && re.MatchString(lp.GetValue()) {
			return false
		}
	}
	// A matcher on a label the sample lacks tests the empty value, as in
	// PromQL.
	if seen < len(r.match) {
		for name, re := range r.match {
			if !hasLabel(m, name) && !re.MatchString("") {
				return false
			}
		}
	}
	return true
}

func hasLabel(m *dto.Metric, name string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return true
		}
	}
	return false
}

// metricValue reads a counter, gauge or untyped sample.
func metricValue(m *dto.Metric) (float64, bool) {
	var v float64
	switch {
	case m.Gauge != nil:
		v = m.GetGauge().GetValue()
	case m.Counter != nil:
		v = m.GetCounter().GetValue()
	case m.Untyped != nil:
		v = m.GetUntyped().GetValue()
	default:
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}
