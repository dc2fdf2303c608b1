package simulate

import (
	"context"
	"fmt"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// maxCatchUp is how many periods Run emits to catch up before it gives up
// on the missed ones.
const maxCatchUp = 10

// Run emits the fleet's observations period by period until ctx ends. It
// emits the period the clock is in at once (every VM, even under
// ChangesOnly, so the consumer starts from a complete picture), then each
// following period as soon as the clock reaches it, looking every
// Options.Tick. If it falls a few periods behind (a slow emit, a fake clock
// moved on) it emits the missed periods in order, so a test or a demo sees
// every fault; if it falls further behind than maxCatchUp periods (a laptop
// that slept) it skips to the current period and emits it complete, since
// replaying hours of synthetic history helps nobody.
//
// Run returns nil when ctx ends, and the error of emit otherwise, since the
// caller knows better than the simulator whether a failed emit is worth
// going on after.
func (f *Fleet) Run(ctx context.Context, emit func(context.Context, []model.Observation) error) error {
	ticker := time.NewTicker(f.tick)
	defer ticker.Stop()
	next := f.Index(f.clock.Now())
	full := true
	for {
		now := f.clock.Now()
		last := f.Index(now)
		if last-next >= maxCatchUp {
			next, full = last, true
		}
		for ; next <= last; next++ {
			if ctx.Err() != nil {
				return nil
			}
			obs := f.step(next, full || !f.changesOnly || next <= 0)
			if err := emit(ctx, obs); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("emit simulated period %d (%s): %w", next, f.PeriodStart(next).Format(time.RFC3339), err)
			}
			full = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
