//go:build faults

package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// startSentinel starts one Redis Sentinel watching master "vtmaster" at
// port, with a quorum of 1 and short timeouts, and returns its port.
func startSentinel(t *testing.T, masterPort int) int {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile %s
sentinel monitor vtmaster 127.0.0.1 %d 1
sentinel down-after-milliseconds vtmaster 1000
sentinel failover-timeout vtmaster 5000
`, port, dir, filepath.Join(dir, "sentinel.log"), masterPort)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis sentinel: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sentinel log:\n%s", tail(filepath.Join(dir, "sentinel.log"), 30))
		}
	})
	return port
}

// replOffset reads master_repl_offset from INFO replication.
func replOffset(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`master_repl_offset:(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0, fmt.Errorf("no master_repl_offset in %q", info)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// TestSentinelFailover runs a replica against a Redis master with one
// replica, watched by a Sentinel, through the redis+sentinel:// URL, while
// a client keeps posting batches of 100 new VMs. The master is SIGKILLed;
// Sentinel promotes the replica. vmtriage must follow the promotion on its
// own (GET /readyz 200 again, observations accepted and applied), and every
// batch acknowledged before the last point the replica had caught up with,
// or after the failover, must be applied. Batches acknowledged between
// that point and the kill may be lost (Redis replication is asynchronous);
// they are counted and reported.
func TestSentinelFailover(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	master := startRedis(t)
	rep := startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	sport := startSentinel(t, master.port)
	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", sport)})
	defer sc.Close()
	eventually(t, 30*time.Second, "sentinel knows the replica", func() error {
		rs, err := sc.Replicas(ctx, "vtmaster").Result()
		if err == nil && len(rs) == 0 {
			err = fmt.Errorf("no replicas yet")
		}
		return err
	})
	url := fmt.Sprintf("redis+sentinel://127.0.0.1:%d/vtmaster", sport)
	r := startReplica(t, "a", map[string]string{"VMTRIAGE_REDIS_URL": url, "VMTRIAGE_RECLAIM_IDLE": "2s"})

	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	batch := func(i int) []model.Observation {
		obs := make([]model.Observation, 100)
		for j := range obs {
			obs[j] = model.Observation{Source: "faulttest", Kind: model.KindVM, ID: fmt.Sprintf("vm-s%04d-%03d", i, j),
				Host: fmt.Sprintf("host-%03d", j), Site: "pod-a", State: model.StateRunning,
				Attrs: map[string]any{"batch": i}, TimeGenerated: base.Add(time.Duration(i) * time.Millisecond)}
		}
		return obs
	}
	var (
		mu      sync.Mutex
		acked   []int
		refused int
	)
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := r.postObservations(batch(i))
			mu.Lock()
			if err == nil {
				acked = append(acked, i)
			} else {
				refused++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	eventually(t, 30*time.Second, "20 batches acknowledged before the failover", func() error {
		if n := ackedCount(); n < 20 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	// The last point known to be on the replica: everything acknowledged
	// before it was written to the master before its offset was read.
	mc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", master.port)})
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rep.port)})
	defer mc.Close()
	defer rc.Close()
	caughtUp := func(what string) (safe int) {
		safe = ackedCount()
		off, err := replOffset(ctx, mc)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, what, func() error {
			got, err := replOffset(ctx, rc)
			if err == nil && got < off {
				err = fmt.Errorf("replica at %d of %d", got, off)
			}
			return err
		})
		return safe
	}
	// Once to let the replica finish its first sync, once more right
	// before the kill so the unreplicated window is short.
	caughtUp("replica in sync")
	safe := caughtUp("replica caught up")
	master.kill()
	killedAt := time.Now()
	atRisk := ackedCount() - safe
	eventually(t, 30*time.Second, "sentinel promotes the replica", func() error {
		addr, err := sc.GetMasterAddrByName(ctx, "vtmaster").Result()
		if err == nil && addr[1] != strconv.Itoa(rep.port) {
			err = fmt.Errorf("master still %v", addr)
		}
		return err
	})
	promoted := time.Since(killedAt)
	eventually(t, 60*time.Second, "replica ready on the new master", func() error {
		code, err := r.ready()
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /readyz: %d", code)
		}
		return err
	})
	ackedAtPromotion := ackedCount()
	eventually(t, 60*time.Second, "20 more batches acknowledged after the failover", func() error {
		if n := ackedCount() - ackedAtPromotion; n < 20 {
			return fmt.Errorf("%d acknowledged since", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	st := store.New(store.Options{Client: rc})
	eventually(t, 90*time.Second, "observation stream drained", func() error {
		pending, lag, err := st.Backlog(ctx)
		if err == nil && (pending != 0 || lag != 0) {
			err = fmt.Errorf("%d pending, %d unread", pending, lag)
		}
		return err
	})
	var missing []string
	lost := 0
	for k, i := range acked {
		for _, o := range batch(i) {
			v, err := st.VM(ctx, o.ID)
			if err == nil && v.State == o.State && fmt.Sprint(v.Attrs["batch"]) == fmt.Sprint(i) {
				continue
			}
			if k >= safe && k < safe+atRisk {
				lost++
				continue
			}
			missing = append(missing, fmt.Sprintf("%s (batch %d): %v %v", o.ID, i, v.State, err))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged observations not applied, e.g.:\n%s", len(missing), strings.Join(missing[:min(10, len(missing))], "\n"))
	}
	t.Logf("%d batches of 100 acknowledged, %d refused during the failover; promoted %s after the kill; "+
		"%d batches acknowledged in the unreplicated window before the kill, %d of their observations lost; total %s",
		len(acked), refused, promoted.Round(time.Millisecond), atRisk, lost, time.Since(started).Round(time.Millisecond))
}
