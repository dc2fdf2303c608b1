package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBodyBytes bounds what one query or scrape may return.
const maxBodyBytes = 64 << 20

// sample is one series of an instant vector: its labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

// apiResponse is the envelope of Prometheus's HTTP API.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// vectorSample is one element of a vector result:
// {"metric":{...},"value":[1700000000.5,"3"]}.
type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  []json.RawMessage `json:"value"`
}

// errBadSample marks samples that were skipped because they are not
// finite numbers; the rest of the vector is still used.
var errBadSample = errors.New("sample is not a finite number")

// decodeQuery reads an /api/v1/query response body. It returns the
// vector's samples, and errBadSample (joined, with a count) when some
// samples were skipped; any other error means nothing could be used.
func decodeQuery(body []byte) ([]sample, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if r.Status != "success" {
		if r.Error == "" {
			return nil, fmt.Errorf("status %q", r.Status)
		}
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result is a %q, want a vector (aggregate by instance)", r.Data.ResultType)
	}
	var vec []vectorSample
	if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
		return nil, fmt.Errorf("decode vector: %w", err)
	}
	out := make([]sample, 0, len(vec))
	bad := 0
	for _, s := range vec {
		v, ok := sampleValue(s.Value)
		if !ok {
			bad++
			continue
		}
		out = append(out, sample{labels: s.Metric, value: v})
	}
	if bad > 0 {
		return out, fmt.Errorf("%d of %d samples skipped: %w", bad, len(vec), errBadSample)
	}
	return out, nil
}

// sampleValue reads [timestamp, "value"].
func sampleValue(pair []json.RawMessage) (float64, bool) {
	if len(pair) != 2 {
		return 0, false
	}
	var s string
	if err := json.Unmarshal(pair[1], &s); err != nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// query runs one instant query evaluated at t.
func (c *Collector) query(ctx context.Context, promQL string, t time.Time) ([]sample, error) {
	form := url.Values{
		"query": {promQL},
		"time":  {strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.queryURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	c.authorize(req)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxBodyBytes)
	}
	samples, err := decodeQuery(body)
	if err != nil && !errors.Is(err, errBadSample) {
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, err
	}
	return samples, err
}

func (c *Collector) authorize(req *http.Request) {
	if c.opts.BearerToken.Set() {
		req.Header.Set("Authorization", "Bearer "+c.opts.BearerToken.Reveal())
	}
}
