//go:build faults

package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// TestRedisRestartMidRun runs two replicas on a redis-server with AOF on
// (fsync on every write) while a client keeps posting batches of 100 new
// VMs, alternating between the replicas. Redis is SIGKILLed mid-run and
// started again on the same port and data directory. The replicas must
// answer GET /readyz with 503 while Redis is gone and 200 again once it is
// back, without a restart of their own, keep accepting observations, and
// every observation acknowledged (202) before, during or after the outage
// must end up applied.
func TestRedisRestartMidRun(t *testing.T) {
	started := time.Now()
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	env := map[string]string{
		"VMTRIAGE_REDIS_URL":    rs.url(),
		"VMTRIAGE_RECLAIM_IDLE": "2s",
	}
	reps := []*replica{startReplica(t, "a", env), startReplica(t, "b", env)}

	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	batch := func(i int) []model.Observation {
		obs := make([]model.Observation, 100)
		for j := range obs {
			obs[j] = model.Observation{Source: "faulttest", Kind: model.KindVM, ID: fmt.Sprintf("vm-b%04d-%03d", i, j),
				Host: fmt.Sprintf("host-%03d", j), Site: "pod-a", State: model.StateRunning,
				Attrs: map[string]any{"batch": i}, TimeGenerated: base.Add(time.Duration(i) * time.Millisecond)}
		}
		return obs
	}

	// The client: one batch every 20 ms, to each replica in turn; a batch
	// the replica refuses (Redis down) is not retried, it is simply not
	// acknowledged.
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
			err := reps[i%2].postObservations(batch(i))
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

	eventually(t, 30*time.Second, "20 batches acknowledged before the outage", func() error {
		if n := ackedCount(); n < 20 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	rs.kill()
	killedAt := time.Now()
	ackedBefore := ackedCount()
	for _, r := range reps {
		eventually(t, 15*time.Second, "replica "+r.name+" not ready while Redis is down", func() error {
			code, err := r.ready()
			if err == nil && code != http.StatusServiceUnavailable {
				err = fmt.Errorf("GET /readyz: %d", code)
			}
			return err
		})
	}
	notReadyAfter := time.Since(killedAt)
	time.Sleep(time.Second) // an outage, not a blip
	rs.start()
	restartedAt := time.Now()
	for _, r := range reps {
		eventually(t, 60*time.Second, "replica "+r.name+" ready again", func() error {
			code, err := r.ready()
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("GET /readyz: %d", code)
			}
			return err
		})
	}
	readyAfter := time.Since(restartedAt)
	ackedAtRestart := ackedCount()
	eventually(t, 60*time.Second, "20 more batches acknowledged after the restart", func() error {
		if n := ackedCount() - ackedAtRestart; n < 20 {
			return fmt.Errorf("%d acknowledged since", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	ctx := context.Background()
	st := store.New(store.Options{Client: rs.client(t)})
	eventually(t, 90*time.Second, "observation stream drained", func() error {
		pending, lag, err := st.Backlog(ctx)
		if err == nil && (pending != 0 || lag != 0) {
			err = fmt.Errorf("%d pending, %d unread", pending, lag)
		}
		return err
	})
	var missing []string
	for _, i := range acked {
		for _, o := range batch(i) {
			v, err := st.VM(ctx, o.ID)
			if err != nil || v.State != o.State || fmt.Sprint(v.Attrs["batch"]) != fmt.Sprint(i) {
				missing = append(missing, fmt.Sprintf("%s (batch %d): %v %v", o.ID, i, v.State, err))
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged observations not applied, e.g.:\n%s", len(missing), strings.Join(missing[:min(10, len(missing))], "\n"))
	}
	t.Logf("%d batches of 100 acknowledged (%d before the kill), %d refused while Redis was down; "+
		"not ready %s after the kill, ready %s after the restart; total %s",
		len(acked), ackedBefore, refused, notReadyAfter.Round(time.Millisecond), readyAfter.Round(time.Millisecond),
		time.Since(started).Round(time.Millisecond))
}
