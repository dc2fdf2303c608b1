package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmtriage/vmtriage/rules"
)

// reloadOnHUP reloads the rule files on SIGHUP until ctx ends. A refused
// file is logged by the engine and the rules in force stay.
func reloadOnHUP(ctx context.Context, engine *rules.Engine, path string, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if err := engine.ReloadFiles(path); err != nil {
				log.Error("SIGHUP: rule files refused; the rules in force stay", "path", path, "err", err)
				continue
			}
			log.Info("SIGHUP: rules reloaded", "path", path)
		}
	}
}
