// Command vmtriage watches a VM fleet, decides why VMs went down and tells
// the on-call team what to do. See "vmtriage help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmtriage/vmtriage/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
