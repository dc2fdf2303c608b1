package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/console"
	"github.com/vmtriage/vmtriage/collectors/simulate"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/remedy"
)

// DemoOptions configures the zero-set-up demo.
type DemoOptions struct {
	Config config.Config
	VMs    int
	Hosts  int
	Sites  int
	Seed   int64
	// Step is the real time one collection period takes in the demo, so a
	// minute-long period plays in a couple of seconds.
	Step time.Duration
	// Duration ends the demo after that long (0 runs until ctx ends).
	Duration time.Duration
	In       io.Reader
	Out      io.Writer
	Color    bool
	Logger   *slog.Logger
}

// Demo runs the service on an embedded Redis with a simulated fleet whose
// faults are injected on a schedule, on a clock that plays one collection
// period every Step, and a console chat on In/Out.
func Demo(ctx context.Context, opts DemoOptions) error {
	if opts.Step <= 0 {
		opts.Step = 2 * time.Second
	}
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	set, err := loadRules(opts.Config.RulesPath)
	if err != nil {
		return err
	}
	period := set.Settings.Period
	clk := clock.NewFake(time.Now().UTC().Truncate(period))
	fleet, err := simulate.New(simulate.Options{
		Seed: opts.Seed, VMs: opts.VMs, Hosts: opts.Hosts, Sites: opts.Sites,
		Period: period, Clock: clk, Start: clk.Now(),
	})
	if err != nil {
		return fmt.Errorf("simulated fleet: %w", err)
	}
	// The simulator actuator carries out remedies on the simulated fleet,
	// and the console's user may approve them.
	sim := newDemoSimulator(fleet)
	if len(opts.Config.Approvers) == 0 {
		opts.Config.Approvers = []string{demoUser}
	}
	fmt.Fprintf(opts.Out, "vmtriage demo: %d VMs on %d hosts in %d sites; one %s collection period every %s.\n",
		len(fleet.VMs()), len(fleet.Hosts()), len(fleet.Sites()), period, opts.Step)
	fmt.Fprintln(opts.Out, "Faults are injected on a schedule. Type /triage help (Ctrl-C to quit).")

	// The console, the fleet's narration and the banner all write to Out
	// from their own goroutines; one lock keeps a writer such as a buffer
	// safe and each message whole.
	opts.Out = &lockedWriter{w: opts.Out}
	// The goroutines started once the service is ready end with this
	// context and are waited for, so nothing writes to Out after Demo
	// returns, even when Serve ends on an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var chat *console.Chat
	return Serve(ctx, Options{
		Config:       opts.Config,
		Logger:       opts.Logger,
		Clock:        clk,
		TickInterval: opts.Step / 4,
		Actuator:     sim,
		NewPoster: func(svc *Service) (bot.Poster, error) {
			var err error
			chat, err = console.NewChat(console.Options{In: opts.In, Out: opts.Out, Router: svc.Router, Color: opts.Color, User: demoUser, Clock: clk})
			if err != nil {
				return nil, err
			}
			return chat.Poster(), nil
		},
		Ready: func(addr string, svc *Service) {
			fmt.Fprintf(opts.Out, "HTTP API on http://%s (try /v1/incidents)\n\n", addr)
			wg.Go(func() { _ = chat.Run(ctx) })
			wg.Go(func() { driveFleet(ctx, fleet, sim, clk, svc, opts) })
		},
	})
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// driveFleet plays the simulated fleet: each step moves the clock to the
// next period and appends that period's observations to the stream, exactly
// as the HTTP receiver would.
func driveFleet(ctx context.Context, fleet *simulate.Fleet, sim *remedy.Simulator, clk *clock.Fake, svc *Service, opts DemoOptions) {
	t := time.NewTicker(opts.Step)
	defer t.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		start := fleet.PeriodStart(i)
		clk.Set(start.Add(time.Second))
		for _, f := range fleet.Schedule(i, i+1) {
			fmt.Fprintf(opts.Out, "  ▸ injected: %s\n", f.Description())
		}
		obs := sim.Apply(fleet.Step(start))
		for j := range obs {
			obs[j].TimeReceived = clk.Now()
		}
		if err := svc.Store.AppendObservations(ctx, obs); err != nil && ctx.Err() == nil {
			opts.Logger.Error("demo: append observations", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
