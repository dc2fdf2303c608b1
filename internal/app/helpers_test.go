package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-envconfig"

	"github.com/vmtriage/vmtriage/internal/app"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// testRedisURL is the Redis the tests use, as storetest chooses it.
func testRedisURL() string {
	if u := strings.TrimSpace(os.Getenv("VMTRIAGE_TEST_REDIS_URL")); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// service is a vmtriage booted by bootService.
type service struct {
	addr   string
	svc    *app.Service
	clock  *clock.Fake
	prefix string
	client *http.Client
}

// bootOptions tune bootService.
type bootOptions struct {
	// Env are extra VMTRIAGE_* variables.
	Env map[string]string
	// TickInterval is the engine's own tick; 0 means an hour, so that only
	// the test's explicit Tick calls move the engine.
	TickInterval time.Duration
	Start        time.Time
}

// bootService runs app.Serve on 127.0.0.1:0 against the test Redis with a
// unique key prefix, on a fake clock, and stops it (and deletes the keys)
// when the test ends. The configuration goes through config.Load, as in
// production.
func bootService(tb testing.TB, o bootOptions) *service {
	tb.Helper()
	rdb := storetest.Client(tb) // fails the test with a hint when Redis is missing
	env := map[string]string{
		"VMTRIAGE_REDIS_URL": testRedisURL(),
		"VMTRIAGE_HTTP_ADDR": "127.0.0.1:0",
		"VMTRIAGE_LOG_LEVEL": "warn",
	}
	maps.Copy(env, o.Env)
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
	if err != nil {
		tb.Fatalf("config.Load: %v", err)
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)
	}
	if o.TickInterval == 0 {
		o.TickInterval = time.Hour
	}
	s := &service{clock: clock.NewFake(o.Start), prefix: "test-app-" + randomHex(8), client: &http.Client{Timeout: 10 * time.Second}}
	tb.Cleanup(func() { deletePrefix(tb, rdb, s.prefix) })

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Serve(ctx, app.Options{
			Config:       cfg,
			Logger:       app.NewLogger(testWriter{tb}, "warn", "text"),
			Clock:        s.clock,
			TickInterval: o.TickInterval,
			Prefix:       s.prefix,
			Ready: func(addr string, svc *app.Service) {
				s.addr, s.svc = addr, svc
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		tb.Fatalf("app.Serve returned before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		tb.Fatal("app.Serve did not become ready within 20s")
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("app.Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			tb.Error("app.Serve did not stop within 20s of its context ending")
		}
	})
	return s
}

// testWriter sends the service's warnings to the test log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (s *service) url(path string) string { return "http://" + s.addr + path }

// post sends body to path and returns the status and response body.
func (s *service) post(tb testing.TB, path, contentType string, body []byte) (int, []byte) {
	tb.Helper()
	resp, err := s.client.Post(s.url(path), contentType, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("POST %s: read body: %v", path, err)
	}
	return resp.StatusCode, b
}

// get fetches path and returns the status and body.
func (s *service) get(tb testing.TB, path string) (int, []byte) {
	tb.Helper()
	resp, err := s.client.Get(s.url(path))
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, b
}

// incidents lists GET /v1/incidents+query as raw JSON objects, so the test
// sees exactly the contract's field names and nulls.
func (s *service) incidents(tb testing.TB, query string) []map[string]any {
	tb.Helper()
	code, body := s.get(tb, "/v1/incidents"+query)
	if code != http.StatusOK {
		tb.Fatalf("GET /v1/incidents%s: status %d: %s", query, code, body)
	}
	var out []map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		tb.Fatalf("GET /v1/incidents%s: %v in %s", query, err, body)
	}
	return out
}

// waitApplied waits until every observation appended so far has been
// applied and evaluated: the ingest group acknowledges (and deletes) an
// entry only after both, so an empty backlog means the pipeline is done.
func (s *service) waitApplied(tb testing.TB) {
	tb.Helper()
	eventually(tb, 20*time.Second, "the observation backlog to drain", func() (bool, string) {
		pending, lag, err := s.svc.Store.Backlog(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return pending == 0 && lag == 0, fmt.Sprintf("pending %d, lag %d", pending, lag)
	})
}

// tick runs one engine tick at the fake clock's time.
func (s *service) tick(tb testing.TB) {
	tb.Helper()
	if err := s.svc.Engine.Tick(context.Background()); err != nil {
		tb.Fatalf("engine tick: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes; cond's
// string says what it saw, for the failure message.
func eventually(tb testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	wait := 5 * time.Millisecond
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s waiting for %s; last saw: %s", limit, what, saw)
		}
		time.Sleep(wait)
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// metricValue returns the value of the sample name{labels} in a Prometheus
// text exposition, and whether it is there. labels is written as in the
// exposition, e.g. `source="libvirt"`.
func metricValue(exposition []byte, name, labels string) (float64, bool) {
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sample, value, ok := strings.Cut(line, " ")
		if !ok || sample != want {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// deletePrefix deletes every key of a store prefix.
func deletePrefix(tb testing.TB, rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	del := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return del(ctx, c) })
	} else {
		err = del(ctx, rdb)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		tb.Errorf("delete keys of prefix %s: %v", prefix, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// running command.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
