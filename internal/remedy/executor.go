package remedy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Defaults of ExecutorOptions.
const (
	DefaultLease       = 2 * time.Minute
	DefaultStepTimeout = 10 * time.Minute
	// DefaultConcurrency is how many VMs of one host move at a time, as
	// Masakari does.
	DefaultConcurrency = 3
)

// ExecutorOptions configure an Executor. Store and Actuator are required.
type ExecutorOptions struct {
	Store    Store
	Actuator Actuator
	// Recovery, if set, skips VMs the platform is recovering itself.
	Recovery Recovery
	// Owner names this executor in remedy records and locks (replica name).
	Owner string
	// Lease is how long a claimed remedy stays this executor's without a
	// sign of life; another executor takes it over after that. It is
	// renewed before every batch of steps. Default 2m.
	Lease time.Duration
	// StepTimeout bounds one actuator call (default 10m).
	StepTimeout time.Duration
	// Concurrency is how many migrations of one remedy run at once
	// (default 3).
	Concurrency int
	// StopOnFailure skips the remaining steps after a failed one; by
	// default a failure does not abort the rest.
	StopOnFailure bool
	// RenewEvery is how often the lease is renewed while steps run
	// (default a third of Lease, in real time).
	RenewEvery time.Duration
	// Poll is how often Run looks for approved remedies (default 1s).
	Poll   time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
}

// Executor runs approved remedies, each exactly once across any number of
// executors sharing the store: a remedy is claimed by a compare-and-set
// from approved to running, and every later change is saved against the
// version this executor wrote, so an executor that lost its claim stops.
type Executor struct {
	o     ExecutorOptions
	clock clock.Clock
	log   *slog.Logger
}

// NewExecutor returns an Executor.
func NewExecutor(o ExecutorOptions) (*Executor, error) {
	if o.Store == nil || o.Actuator == nil {
		return nil, errors.New("new remedy executor: Options.Store and Options.Actuator are required")
	}
	if o.Owner == "" {
		return nil, errors.New("new remedy executor: Options.Owner is required")
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	x := &Executor{o: o, clock: o.Clock, log: o.Logger}
	if x.clock == nil {
		x.clock = clock.Real{}
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	return x, nil
}

// Run runs approved remedies until ctx ends.
func (x *Executor) Run(ctx context.Context) error {
	t := time.NewTicker(x.o.Poll)
	defer t.Stop()
	for {
		if _, err := x.RunOnce(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("run remedies", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce claims the remedies that are due (approved, or running under an
// expired lease) and runs them to the end, one after the other. It
// returns how many it ran.
func (x *Executor) RunOnce(ctx context.Context) (int, error) {
	ids, err := x.o.Store.DueRemedies(ctx, x.clock.Now(), 20)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		r, ok, err := x.claim(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		n++
		if err := x.run(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// claim moves a due remedy to running under this executor. It reports
// false when the remedy is not due after all or someone else claimed it.
func (x *Executor) claim(ctx context.Context, id string) (model.Remedy, bool, error) {
	r, err := x.o.Store.Remedy(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	now := x.clock.Now()
	entry := model.AuditEntry{Who: x.o.Owner, What: "started"}
	switch {
	case r.State == model.RemedyApproved:
	case r.State == model.RemedyRunning && !now.Before(r.LeaseUntil):
		entry.What = "taken over from " + r.Owner
		for i := range r.Steps {
			if r.Steps[i].State == model.StepStarted {
				// Its outcome is unknown: running it again could move a
				// VM twice, so a person has to look.
				r.Steps[i].State = model.StepFailed
				r.Steps[i].Detail = "interrupted: " + r.Owner + " stopped while it ran; outcome unknown, check it"
				r.Steps[i].At = now
			}
		}
	default:
		return r, false, nil
	}
	r.State, r.Owner, r.LeaseUntil = model.RemedyRunning, x.o.Owner, now.Add(x.o.Lease)
	err = x.o.Store.SaveRemedy(ctx, &r, entry)
	if errors.Is(err, store.ErrConflict) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	x.log.Info("remedy "+entry.What, "remedy", r.ID, "incident", r.Incident, "action", r.Action)
	SyncIncident(ctx, x.o.Store, r, x.log)
	return r, true, nil
}

// errLost means another executor changed the remedy: this one stops.
var errLost = errors.New("lost the remedy to another executor")

// run executes r's pending steps in batches and records the outcome.
func (x *Executor) run(ctx context.Context, r model.Remedy) error {
	log := x.log.With("remedy", r.ID, "incident", r.Incident)
	stopped := false
	for {
		batch := x.nextBatch(r)
		if len(batch) == 0 {
			break
		}
		if stopped {
			for _, i := range batch {
				r.Steps[i].State, r.Steps[i].Detail, r.Steps[i].At = model.StepSkipped, "not run: an earlier step failed", x.clock.Now()
			}
			continue
		}
		now := x.clock.Now()
		for _, i := range batch {
			r.Steps[i].State, r.Steps[i].At = model.StepStarted, now
		}
		r.LeaseUntil = now.Add(x.o.Lease)
		if err := x.save(ctx, &r); err != nil {
			return err
		}
		results := x.runBatch(ctx, &r, batch)
		if results == nil {
			return fmt.Errorf("remedy %s: %w", r.ID, errLost)
		}
		var audit []model.AuditEntry
		for k, i := range batch {
			r.Steps[i] = results[k]
			audit = append(audit, model.AuditEntry{Who: x.o.Owner, What: stepText(results[k]), Result: string(results[k].State) + detailSuffix(results[k].Detail)})
			if results[k].State == model.StepFailed && x.o.StopOnFailure {
				stopped = true
			}
		}
		if err := x.save(ctx, &r, audit...); err != nil {
			return err
		}
		if len(x.nextBatch(r)) > 0 {
			SyncIncident(ctx, x.o.Store, r, log) // progress; the last batch is told by the summary
		}
	}
	text, failed := Outcome(r)
	r.Result = text
	r.State = model.RemedyDone
	if failed {
		r.State = model.RemedyFailed
	}
	if err := x.save(ctx, &r, model.AuditEntry{Who: x.o.Owner, What: "finished", Result: string(r.State) + ": " + text}); err != nil {
		return err
	}
	log.Info("remedy finished", "state", r.State, "result", text)
	SyncIncident(ctx, x.o.Store, r, log)
	return nil
}

// runBatch runs the steps of batch at once, renewing the lease while they
// run (a step may take longer than the lease), and returns their outcomes;
// nil when the lease could not be renewed because another executor took
// the remedy over, in which case the steps' outcomes are left to it (it
// marks them unknown, never repeats them).
func (x *Executor) runBatch(ctx context.Context, r *model.Remedy, batch []int) []model.RemedyStep {
	snapshot := *r
	snapshot.Steps = slices.Clone(r.Steps)
	results := make([]model.RemedyStep, len(batch))
	var wg sync.WaitGroup
	for k, i := range batch {
		wg.Go(func() { results[k] = x.step(ctx, snapshot, snapshot.Steps[i]) })
	}
	done := make(chan struct{})
	lost := false
	var renew sync.WaitGroup
	renew.Go(func() {
		t := time.NewTicker(x.renewEvery())
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.LeaseUntil = x.clock.Now().Add(x.o.Lease)
				if err := x.save(ctx, r); err != nil {
					x.log.Warn("renew remedy lease", "remedy", r.ID, "err", err)
					if errors.Is(err, errLost) {
						lost = true
						return
					}
				}
			}
		}
	})
	wg.Wait()
	close(done)
	renew.Wait()
	if lost {
		return nil
	}
	return results
}

// renewEvery is how often a running batch renews its lease: a third of
// the lease, so two renewals may fail before another executor takes over.
func (x *Executor) renewEvery() time.Duration {
	if x.o.RenewEvery > 0 {
		return x.o.RenewEvery
	}
	return x.o.Lease / 3
}

func (x *Executor) save(ctx context.Context, r *model.Remedy, audit ...model.AuditEntry) error {
	err := x.o.Store.SaveRemedy(ctx, r, audit...)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("remedy %s: %w", r.ID, errLost)
	}
	return err
}

// nextBatch picks the next pending steps: up to Concurrency migrations
// at once, any other step alone (maintenance comes first in a plan, so
// the host is closed before VMs leave it).
func (x *Executor) nextBatch(r model.Remedy) []int {
	var batch []int
	for i, s := range r.Steps {
		if s.State != model.StepPending {
			continue
		}
		if s.Do != model.StepMigrateVM {
			if len(batch) == 0 {
				return []int{i}
			}
			return batch
		}
		batch = append(batch, i)
		if len(batch) == x.o.Concurrency {
			return batch
		}
	}
	return batch
}

// step runs one step and returns it with its outcome.
func (x *Executor) step(ctx context.Context, r model.Remedy, s model.RemedyStep) model.RemedyStep {
	finish := func(state model.StepState, detail string) model.RemedyStep {
		s.State, s.Detail, s.At = state, detail, x.clock.Now()
		return s
	}
	if s.VM != "" && x.o.Recovery != nil {
		if id, ok := x.o.Recovery.PlatformRecovery(s.VM); ok {
			return finish(model.StepSkipped, "platform recovery in progress ("+id+")")
		}
	}
	subject := s.VM
	if subject == "" {
		subject = s.Host
	}
	locked, err := x.o.Store.LockSubject(ctx, subject, r.ID, x.o.Lease+x.o.StepTimeout)
	if err != nil {
		return finish(model.StepFailed, "could not take the lock: "+err.Error())
	}
	if !locked {
		return finish(model.StepSkipped, "another remedy is acting on "+subject)
	}
	defer func() {
		if err := x.o.Store.UnlockSubject(context.WithoutCancel(ctx), subject, r.ID); err != nil {
			x.log.Warn("release remedy lock", "subject", subject, "err", err)
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, x.o.StepTimeout)
	defer cancel()
	t := Target{VM: s.VM, Host: s.Host, Site: r.Site}
	switch s.Do {
	case model.StepRestartVM:
		err = x.o.Actuator.RestartVM(sctx, t)
	case model.StepRestartService:
		err = x.o.Actuator.RestartService(sctx, s.Host, s.Service)
	case model.StepMigrateVM:
		err = x.o.Actuator.MigrateVM(sctx, t, s.Target)
	case model.StepHostMaintenance:
		err = x.o.Actuator.HostMaintenance(sctx, s.Host)
	default:
		err = fmt.Errorf("unknown step %q", s.Do)
	}
	switch {
	case errors.Is(err, ErrNotSupported):
		return finish(model.StepSkipped, err.Error())
	case err != nil:
		return finish(model.StepFailed, err.Error())
	}
	if n, ok := x.o.Actuator.(migrateNoter); ok && s.Do == model.StepMigrateVM {
		return finish(model.StepDone, n.MigrateNote())
	}
	return finish(model.StepDone, "")
}

// migrateNoter is an Actuator whose migrations do not land where the plan
// says (Azure's redeploy picks the host itself); its note becomes each
// done migration's detail, so the thread and the summary say so.
type migrateNoter interface {
	MigrateNote() string
}

func stepText(s model.RemedyStep) string {
	switch s.Do {
	case model.StepMigrateVM:
		return fmt.Sprintf("migrate %s from %s to %s", s.VM, s.Host, s.Target)
	case model.StepRestartVM:
		return "restart " + s.VM
	case model.StepRestartService:
		return "restart " + s.Service + " on " + s.Host
	case model.StepHostMaintenance:
		return "put " + s.Host + " into maintenance"
	}
	return s.Do
}

func detailSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}
