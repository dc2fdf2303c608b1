package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/vmtriage/vmtriage/bot/console"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/rules"
)

// Version is set at build time with -ldflags "-X ...app.Version=v1.2.3".
var Version = ""

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

const usage = `vmtriage decides why VMs went down and tells the on-call team what to do.

Usage:
  vmtriage serve                 run the service (configured by VMTRIAGE_* variables)
  vmtriage demo [flags]          zero set-up demo: embedded Redis, simulated fleet, console chat
  vmtriage rules check FILE...   compile and validate rule files; exit 1 on any error
  vmtriage replay [flags] FILE   feed JSON-lines observations through the pipeline, print incidents
  vmtriage version               print the version
  vmtriage help                  this text

Run "vmtriage COMMAND -h" for a command's flags and details.
`

// Main runs the vmtriage command line and returns the exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Err, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdio)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdio)
	case "rules":
		return cmdRules(args[1:], stdio)
	case "replay":
		return cmdReplay(ctx, args[1:], stdio)
	case "version":
		fmt.Fprintln(stdio.Out, "vmtriage", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdio.Out, usage)
		return 0
	default:
		fmt.Fprintf(stdio.Err, "vmtriage: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stdio.Err, "vmtriage:", err)
		return 1
	}
	return 0
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func newFlags(name, help string, stdio IO) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {
		fmt.Fprint(stdio.Err, help)
		fs.PrintDefaults()
	}
	return fs
}

func cmdServe(ctx context.Context, args []string, stdio IO) error {
	fs := newFlags("serve", "Usage: vmtriage serve\n\nRuns the service. It is configured by these environment variables:\n\n", stdio)
	fs.Usage = func() {
		fmt.Fprint(stdio.Out, "Usage: vmtriage serve\n\nRuns the service: HTTP API, ingest, rules engine and notifications.\nConfigured by these environment variables:\n\n")
		config.Usage(stdio.Out)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(ctx, nil)
	if err != nil {
		return err
	}
	return Serve(ctx, Options{Config: cfg, Logger: NewLogger(stdio.Err, cfg.LogLevel, cfg.LogFormat)})
}

func cmdDemo(ctx context.Context, args []string, stdio IO) error {
	fs := newFlags("demo", "Usage: vmtriage demo [flags]\n\nRuns vmtriage with an embedded Redis and a simulated fleet with injected faults.\nIncidents appear in the terminal; type /triage commands (try /triage help).\n\nFlags:\n", stdio)
	var o DemoOptions
	fs.IntVar(&o.VMs, "vms", 1000, "simulated VMs")
	fs.IntVar(&o.Hosts, "hosts", 50, "simulated hosts")
	fs.IntVar(&o.Sites, "sites", 3, "simulated sites")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the simulation (the same seed plays the same faults)")
	fs.DurationVar(&o.Step, "step", 2*time.Second, "real time per collection period")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long and exit 0 (for scripts); 0 runs until Ctrl-C")
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP address of the demo's API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(ctx, nil)
	if err != nil {
		return err
	}
	cfg.HTTPAddr = *httpAddr
	cfg.RedisURL = "" // the demo always runs on its own embedded Redis
	o.Config = cfg
	o.In, o.Out = stdio.In, stdio.Out
	if f, ok := stdio.Out.(*os.File); ok {
		o.Color = console.UseColor(f)
	}
	o.Logger = NewLogger(stdio.Err, "warn", "text")
	return Demo(ctx, o)
}

func cmdRules(args []string, stdio IO) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stdio.Err, "Usage: vmtriage rules check FILE...\n\nCompiles and validates rule files (or folders of them). Prints every error with file,\nline, rule and key and exits 1, or prints one summary line per file and exits 0.\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	files := args[1:]
	if len(files) == 1 && (files[0] == "-h" || files[0] == "--help") {
		fmt.Fprint(stdio.Out, "Usage: vmtriage rules check FILE...\n")
		return 0
	}
	if len(files) == 0 {
		fmt.Fprintln(stdio.Err, "vmtriage rules check: name at least one rule file or folder")
		return 2
	}
	set, err := rules.LoadFiles(files...)
	if err != nil {
		fmt.Fprintln(stdio.Err, err)
		return 1
	}
	for _, s := range set.Summary() {
		fmt.Fprintln(stdio.Out, s.String())
	}
	return 0
}
