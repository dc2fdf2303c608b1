package outage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// ApplyIncident updates one VM's intervals (oldest first) with an incident
// change. vm is the VM's current state (State empty when unknown); deleted
// says the incident was withdrawn (it never fired), so it explains
// nothing. The incident's previous claim is replaced by the new one: every
// interval overlapping the incident's window is explained by it, and when
// none does, the incident is open and the VM is down now, an interval opens
// at the moment the VM went down. A resolved incident of a VM running again
// also closes its open interval. now bounds open windows.
func ApplyIncident(ivs []store.Outage, inc *model.Incident, deleted bool, vm model.VMStatus, now time.Time) []store.Outage {
	for i := range ivs {
		ivs[i].Causes = slices.DeleteFunc(ivs[i].Causes, func(c store.OutageCause) bool { return c.Incident == inc.ID })
	}
	if !deleted && !inc.StartedAt.IsZero() {
		claim := store.OutageCause{
			Incident: inc.ID, Attribution: string(Of(inc)), Cause: inc.Cause, Rule: inc.Rule,
			Severity: string(inc.Severity), Silenced: inc.Silenced,
		}
		wEnd := inc.ResolvedAt
		if inc.Open() || wEnd.IsZero() {
			wEnd = time.Time{} // open window
		}
		matched := false
		for i := range ivs {
			if overlaps(ivs[i].Start, ivs[i].End, inc.StartedAt, wEnd) {
				ivs[i].Causes = append(ivs[i].Causes, claim)
				matched = true
			}
		}
		if !matched && inc.Open() && vm.State.Down() && !hasOpen(ivs) {
			start := vm.Since
			if start.IsZero() || start.After(now) {
				start = inc.StartedAt
			}
			start = afterLast(ivs, start)
			ivs = append(ivs, store.Outage{VM: vm.ID, Host: vm.Host, Site: vm.Site, Start: start,
				State: string(vm.State), Causes: []store.OutageCause{claim}})
		} else if !matched && !hasOpen(ivs) && vm.State == model.StateRunning && vm.Since.After(inc.StartedAt) &&
			(wEnd.IsZero() || !vm.Since.After(wEnd)) {
			// The books read this change late: the VM the incident names
			// ran again before they saw it down. It was down from the
			// incident's start (the first moment anyone knew) until it ran.
			ivs = append(ivs, store.Outage{VM: vm.ID, Host: vm.Host, Site: vm.Site, Start: afterLast(ivs, inc.StartedAt),
				End: vm.Since, State: string(model.StateUnavailable), Causes: []store.OutageCause{claim}})
		}
	}
	if !inc.Open() {
		ivs = ApplyState(ivs, vm, nil)
	}
	return attribute(ivs)
}

// ApplyState reconciles one VM's intervals with its current state: a VM
// down without an open interval gets one from the moment it went down,
// explained by the open incidents given (they may have arrived while it
// still ran); a VM running again closes its open interval at the moment it
// started running. A state that says nothing (unknown, empty) changes
// nothing.
func ApplyState(ivs []store.Outage, vm model.VMStatus, open []model.Incident) []store.Outage {
	i := openIndex(ivs)
	switch {
	case i >= 0 && vm.State == model.StateRunning:
		end := vm.Since
		if end.Before(ivs[i].Start) {
			end = ivs[i].Start
		}
		ivs[i].End = end
	case i >= 0 && vm.State.Down():
		ivs[i].State = string(vm.State)
	case i < 0 && vm.State.Down() && !vm.Since.IsZero():
		start := afterLast(ivs, vm.Since)
		o := store.Outage{VM: vm.ID, Host: vm.Host, Site: vm.Site, Start: start, State: string(vm.State)}
		for j := range open {
			inc := &open[j]
			if overlaps(start, time.Time{}, inc.StartedAt, inc.ResolvedAt) {
				o.Causes = append(o.Causes, store.OutageCause{
					Incident: inc.ID, Attribution: string(Of(inc)), Cause: inc.Cause, Rule: inc.Rule,
					Severity: string(inc.Severity), Silenced: inc.Silenced,
				})
			}
		}
		ivs = append(ivs, o)
	}
	return attribute(ivs)
}

// attribute sets every interval's attribution and cause from its claims,
// by precedence; among claims of equal rank the first kept wins.
func attribute(ivs []store.Outage) []store.Outage {
	for i := range ivs {
		best := Unknown
		cause := ""
		for _, c := range ivs[i].Causes {
			if a := Attribution(c.Attribution); a.Rank() < best.Rank() {
				best, cause = a, c.Cause
			}
		}
		ivs[i].Attribution, ivs[i].Cause = string(best), cause
	}
	return ivs
}

// overlaps reports whether [aStart, aEnd) and [bStart, bEnd) share time; a
// zero end is open. An incident resolved at the very moment the VM went
// down again does not explain the new outage.
func overlaps(aStart, aEnd, bStart, bEnd time.Time) bool {
	if !aEnd.IsZero() && !bStart.Before(aEnd) {
		return false
	}
	if !bEnd.IsZero() && !aStart.Before(bEnd) {
		return false
	}
	return true
}

func openIndex(ivs []store.Outage) int {
	for i := range ivs {
		if ivs[i].Open() {
			return i
		}
	}
	return -1
}

func hasOpen(ivs []store.Outage) bool { return openIndex(ivs) >= 0 }

// afterLast keeps a new interval from starting inside a closed one (the
// VM's Since can be older than a close when records arrived out of order).
func afterLast(ivs []store.Outage, start time.Time) time.Time {
	for i := range ivs {
		if !ivs[i].End.IsZero() && ivs[i].End.After(start) {
			start = ivs[i].End
		}
	}
	return start
}

// Store is what the books need of the state store.
type Store interface {
	ReadIncidentEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]store.IncidentEvent, error)
	ClaimIncidentEvents(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]store.IncidentEvent, error)
	AckIncidentEvents(ctx context.Context, group string, ids ...string) error
	VM(ctx context.Context, id string) (model.VMStatus, error)
	ListVMs(ctx context.Context, site, host string) ([]model.VMStatus, error)
	OpenIncidents(ctx context.Context) ([]model.Incident, error)
	UpdateOutages(ctx context.Context, vm string, change func([]store.Outage) ([]store.Outage, error)) error
	OpenOutages(ctx context.Context) (map[string]time.Time, error)
	PruneOutages(ctx context.Context, before time.Time) (int, error)
}

var _ Store = (*store.Store)(nil)

// Options configure Books. Store and Consumer are required.
type Options struct {
	Store Store
	// Consumer names this replica in the consumer group.
	Consumer string
	// Sweep is how often every VM's state is reconciled with the books
	// (outages no incident explains, VMs running again). Default 1m.
	Sweep time.Duration
	// Retention is how long closed intervals are kept. Default 400 days.
	Retention time.Duration
	// Block is how long one read waits for incident changes. Default 1s.
	Block time.Duration
	// ClaimIdle is how long another consumer may hold a change before it
	// is taken over. Default 1m.
	ClaimIdle time.Duration
	Clock     clock.Clock
	Logger    *slog.Logger
}

// Books keeps the outage intervals up to date. Run it with Run; several
// replicas may run at once (they share the consumer group, and each VM's
// intervals change in a transaction).
type Books struct {
	opts      Options
	log       *slog.Logger
	lastSweep time.Time
	lastClaim time.Time
}

// New returns Books with opts' defaults filled in.
func New(opts Options) (*Books, error) {
	if opts.Store == nil {
		return nil, errors.New("outage books: a store is required")
	}
	if opts.Consumer == "" {
		return nil, errors.New("outage books: a consumer name is required")
	}
	if opts.Sweep <= 0 {
		opts.Sweep = time.Minute
	}
	if opts.Retention <= 0 {
		opts.Retention = 400 * 24 * time.Hour
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Books{opts: opts, log: log}, nil
}

// Run keeps the books until ctx ends: it sweeps at start and every Sweep,
// and applies incident changes as they arrive.
func (b *Books) Run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		if err := b.Step(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait := min(time.Duration(failures)*time.Second, 30*time.Second)
			b.log.Warn("outage books", "err", err, "attempt", failures, "retry_in", wait.String())
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		failures = 0
	}
	return nil
}

// Step does one round: a sweep when due, stale changes taken over when due,
// then the new incident changes (waiting up to Block for them).
func (b *Books) Step(ctx context.Context) error {
	now := b.opts.Clock.Now()
	if b.lastSweep.IsZero() || now.Sub(b.lastSweep) >= b.opts.Sweep {
		if err := b.Sweep(ctx); err != nil {
			return err
		}
		b.lastSweep = now
	}
	if b.lastClaim.IsZero() || now.Sub(b.lastClaim) >= b.opts.ClaimIdle {
		evs, err := b.opts.Store.ClaimIncidentEvents(ctx, store.OutageGroup, b.opts.Consumer, b.opts.ClaimIdle, 100)
		if err != nil {
			return fmt.Errorf("claim stale incident events: %w", err)
		}
		b.lastClaim = now
		if err := b.Handle(ctx, evs); err != nil {
			return err
		}
	}
	evs, err := b.opts.Store.ReadIncidentEvents(ctx, store.OutageGroup, b.opts.Consumer, 100, b.opts.Block)
	if err != nil {
		return fmt.Errorf("read incident events: %w", err)
	}
	return b.Handle(ctx, evs)
}

// Handle applies incident changes to the books and acknowledges each once
// applied. An error leaves the rest unacknowledged, to be taken over.
func (b *Books) Handle(ctx context.Context, evs []store.IncidentEvent) error {
	for _, ev := range evs {
		if ev.Incident.ID != "" {
			if err := b.apply(ctx, &ev); err != nil {
				return err
			}
		}
		if err := b.opts.Store.AckIncidentEvents(ctx, store.OutageGroup, ev.ID); err != nil {
			return err
		}
	}
	return nil
}

func (b *Books) apply(ctx context.Context, ev *store.IncidentEvent) error {
	now := b.opts.Clock.Now()
	for _, id := range VMsOf(&ev.Incident) {
		vm, err := b.opts.Store.VM(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("book incident %s: %w", ev.Incident.ID, err)
		}
		vm.ID = id
		err = b.opts.Store.UpdateOutages(ctx, id, func(ivs []store.Outage) ([]store.Outage, error) {
			return ApplyIncident(ivs, &ev.Incident, ev.Deleted, vm, now), nil
		})
		if err != nil {
			return fmt.Errorf("book incident %s: %w", ev.Incident.ID, err)
		}
	}
	return nil
}

// Sweep reconciles every VM's state with the books: it opens intervals for
// VMs that went down (explained by their open incidents, if any), closes
// those of VMs running again, and prunes intervals older than Retention.
// Restarts are safe: what happened while no replica ran is found here.
func (b *Books) Sweep(ctx context.Context) error {
	vms, err := b.opts.Store.ListVMs(ctx, "", "")
	if err != nil {
		return fmt.Errorf("sweep outages: %w", err)
	}
	open, err := b.opts.Store.OpenOutages(ctx)
	if err != nil {
		return fmt.Errorf("sweep outages: %w", err)
	}
	var incs map[string][]model.Incident
	for _, vm := range vms {
		_, isOpen := open[vm.ID]
		if !(!isOpen && vm.State.Down() || isOpen && vm.State == model.StateRunning) {
			continue // the books agree with the state
		}
		if incs == nil {
			incs, err = b.openByVM(ctx)
			if err != nil {
				return err
			}
		}
		err := b.opts.Store.UpdateOutages(ctx, vm.ID, func(ivs []store.Outage) ([]store.Outage, error) {
			return ApplyState(ivs, vm, incs[vm.ID]), nil
		})
		if err != nil {
			return fmt.Errorf("sweep outages: %w", err)
		}
	}
	if n, err := b.opts.Store.PruneOutages(ctx, b.opts.Clock.Now().Add(-b.opts.Retention)); err != nil {
		return err
	} else if n > 0 {
		b.log.Info("pruned old outage intervals", "count", n)
	}
	return nil
}

func (b *Books) openByVM(ctx context.Context) (map[string][]model.Incident, error) {
	all, err := b.opts.Store.OpenIncidents(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep outages: %w", err)
	}
	out := map[string][]model.Incident{}
	for _, inc := range all {
		for _, vm := range VMsOf(&inc) {
			out[vm] = append(out[vm], inc)
		}
	}
	return out, nil
}
