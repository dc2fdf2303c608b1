package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/ingest"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/rules"
)

// ReplayOptions configures a replay.
type ReplayOptions struct {
	RulesPath string
	// Settle is how long the clock runs on after the last observation, so
	// pending incidents can fire and cleared ones resolve.
	Settle time.Duration
	JSON   bool
	Out    io.Writer
	Logger *slog.Logger
}

// Replay feeds the observations of body (JSON lines) through the same
// pipeline as the service — the observation stream, the state store and the
// rules engine — on a clock that follows the observations' own times, and
// writes the incidents that result. Bad input is refused whole, with line
// numbers, before anything is applied.
func Replay(ctx context.Context, body []byte, opts ReplayOptions) error {
	latest, err := latestTime(body)
	if err != nil {
		return err
	}
	obs, err := model.DecodeObservations(body, latest)
	if err != nil {
		return err
	}
	sort.SliceStable(obs, func(i, j int) bool { return obs[i].TimeGenerated.Before(obs[j].TimeGenerated) })

	set, err := loadRules(opts.RulesPath)
	if err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rdb, closeRedis, err := connectRedis(ctx, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeRedis()
	clk := clock.NewFake(obs[0].TimeGenerated)
	st := store.New(store.Options{Client: rdb, Clock: clk, Period: set.Settings.Period, Logger: log})
	engine, err := rules.NewEngine(ctx, rules.Options{Rules: set, Store: st, Clock: clk, Logger: log})
	if err != nil {
		return fmt.Errorf("start rules engine: %w", err)
	}
	pipe, err := ingest.New(ingest.Options{Stream: st, Evaluator: engine, Consumer: "replay", Clock: clk, Logger: log})
	if err != nil {
		return err
	}
	// Feed one instant at a time, so the engine sees time pass as it did.
	for i := 0; i < len(obs); {
		j := i
		for j < len(obs) && obs[j].TimeGenerated.Equal(obs[i].TimeGenerated) {
			obs[j].TimeReceived = obs[j].TimeGenerated
			j++
		}
		clk.Set(obs[i].TimeGenerated)
		if err := engine.Tick(ctx); err != nil {
			return fmt.Errorf("replay tick: %w", err)
		}
		if err := st.AppendObservations(ctx, obs[i:j]); err != nil {
			return fmt.Errorf("replay append: %w", err)
		}
		for {
			n, err := pipe.Step(ctx, 0)
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			if n == 0 {
				break
			}
		}
		i = j
	}
	step := set.Settings.Period / 4
	for t := time.Duration(0); t < opts.Settle; t += step {
		clk.Advance(step)
		if err := engine.Tick(ctx); err != nil {
			return fmt.Errorf("replay tick: %w", err)
		}
	}
	incs, err := st.Incidents(ctx, model.IncidentFilter{Limit: 10000})
	if err != nil {
		return fmt.Errorf("list incidents: %w", err)
	}
	sort.Slice(incs, func(i, j int) bool { return incs[i].StartedAt.Before(incs[j].StartedAt) })
	return writeIncidents(opts.Out, incs, opts.JSON)
}

func writeIncidents(w io.Writer, incs []model.Incident, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, inc := range incs {
			if err := enc.Encode(inc); err != nil {
				return err
			}
		}
		return nil
	}
	if len(incs) == 0 {
		fmt.Fprintln(w, "no incidents")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tRULE\tSUBJECT\tCAUSE\tTRIGGER\tACTION\tVMS")
	for _, inc := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", inc.ID, inc.Status, inc.Severity, inc.Rule,
			inc.Subject, inc.Cause, inc.Trigger, inc.Action, len(inc.VMs))
	}
	return tw.Flush()
}

// latestTime finds the newest time_generated in body, against which the
// replay validates ages (a post-mortem file is old by nature).
func latestTime(body []byte) (time.Time, error) {
	var latest time.Time
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var rec struct {
			T time.Time `json:"time_generated"`
		}
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The full decode reports it with its line number.
			break
		}
		if rec.T.After(latest) {
			latest = rec.T
		}
	}
	if latest.IsZero() {
		latest = time.Now()
	}
	return latest, nil
}

func cmdReplay(ctx context.Context, args []string, stdio IO) int {
	fs := newFlags("replay", "Usage: vmtriage replay [flags] FILE\n\nFeeds a JSON-lines file of observations through the pipeline (on an embedded Redis,\nwith the clock following the observations' times) and prints the incidents that result.\nExits 1, naming the lines, if any record is bad; nothing is applied then.\n\nFlags:\n", stdio)
	var o ReplayOptions
	fs.StringVar(&o.RulesPath, "rules", os.Getenv("VMTRIAGE_RULES_PATH"), "rule file or folder (default: the built-in rules)")
	fs.DurationVar(&o.Settle, "settle", 10*time.Minute, "how long the clock runs on after the last observation")
	fs.BoolVar(&o.JSON, "json", false, "print incidents as JSON lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	body, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stdio.Err, "vmtriage replay:", err)
		return 1
	}
	o.Out = stdio.Out
	if err := Replay(ctx, body, o); err != nil {
		var be *model.BatchError
		if errors.As(err, &be) {
			fmt.Fprintf(stdio.Err, "vmtriage replay: %s: %d bad record(s), nothing replayed:\n", fs.Arg(0), be.Total)
			for _, r := range be.Records {
				fmt.Fprintf(stdio.Err, "  line %d: %s\n", r.Line, r.Reason)
			}
			return 1
		}
		fmt.Fprintf(stdio.Err, "vmtriage replay: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	return 0
}
