// Package storetest gives tests a store.Store on a real Redis, isolated by
// a unique key prefix and cleaned up afterwards.
//
// Tests that need Redis fail, never skip, when it is not reachable: a store
// test that silently skips is a store that is not tested. `make test` starts
// a redis-server; set VMTRIAGE_TEST_REDIS_URL to use another one.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/store"
)

const (
	envURL     = "VMTRIAGE_TEST_REDIS_URL"
	defaultURL = "redis://127.0.0.1:6379/0"
)

var (
	mu      sync.Mutex
	clients = map[string]redis.UniversalClient{}
	// failures remembers an unreachable URL so that the other tests of the
	// binary fail at once instead of each waiting for a timeout.
	failures = map[string]error{}
)

func testURL() string {
	if u := strings.TrimSpace(os.Getenv(envURL)); u != "" {
		return u
	}
	return defaultURL
}

// Client returns a client for the test Redis, shared by the tests of one
// test binary. It fails the test with a hint when Redis is unreachable.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	u := testURL()
	mu.Lock()
	defer mu.Unlock()
	if c, ok := clients[u]; ok {
		return c
	}
	err := failures[u]
	var c redis.UniversalClient
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err = store.Connect(ctx, u)
		cancel()
	}
	if err != nil {
		failures[u] = err
		t.Fatalf("tests need a Redis server: %v\n"+
			"hint: run `make test`, which starts redis-server, or start one on 127.0.0.1:6379, "+
			"or point %s at one", err, envURL)
	}
	clients[u] = c
	return c
}

// New returns a Store on the test Redis with a prefix of its own (opts'
// Client and Prefix are replaced). Its keys are deleted when the test ends.
func New(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	rdb := Client(t)
	prefix := "test-" + randomHex(8)
	opts.Client = rdb
	opts.Prefix = prefix
	t.Cleanup(func() { cleanup(t, rdb, prefix) })
	return store.New(opts)
}

// cleanup deletes every key of prefix (SCAN MATCH, then DEL per key, which
// also works on Redis Cluster).
func cleanup(t testing.TB, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pattern := "{" + prefix + "}:*"
	del := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
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
	if err != nil {
		t.Errorf("delete test keys %s: %v", pattern, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
