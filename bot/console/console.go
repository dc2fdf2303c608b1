// Package console is the demo's terminal chat: people type "/triage ..."
// commands, which run through the same bot.Router as Slack's, and incident
// notifications are printed as short aligned messages — what, where, why,
// what to do. Colour is used only when asked for (on a terminal).
package console

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/clock"
)

// Router runs command text; *bot.Router implements it.
type Router interface {
	HandleText(ctx context.Context, text string, from bot.Command) bot.Reply
}

var (
	_ Router     = (*bot.Router)(nil)
	_ bot.Poster = (*Poster)(nil)
)

// Options configures a Chat. In, Out and Router are required.
type Options struct {
	In     io.Reader
	Out    io.Writer
	Router Router
	// Color turns ANSI colours on; set it only when Out is a terminal
	// (see IsTerminal).
	Color bool
	// User names the person at the keyboard in commands, audit and acks
	// (default "console").
	User string
	// Timeout bounds each command (default 10s).
	Timeout time.Duration
	Clock   clock.Clock // default clock.Real{}
}

// Chat reads command lines and prints replies; its Poster prints incident
// notifications to the same output, safely interleaved.
type Chat struct {
	opts Options
	out  *output
}

// output serialises writes, so a notification never lands in the middle of
// a reply.
type output struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
	clock clock.Clock
}

func (o *output) write(s string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, err := io.WriteString(o.w, s)
	return err
}

// NewChat returns a Chat; call Run to start it.
func NewChat(opts Options) (*Chat, error) {
	if opts.In == nil || opts.Out == nil || opts.Router == nil {
		return nil, errors.New("new console chat: Options.In, Out and Router are required")
	}
	if opts.User == "" {
		opts.User = "console"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Chat{opts: opts, out: &output{w: opts.Out, color: opts.Color, clock: opts.Clock}}, nil
}

// Poster returns a bot.Poster that prints to the chat's output, sharing its
// lock.
func (c *Chat) Poster() *Poster { return &Poster{out: c.out} }

// Channel is the channel name console commands carry.
const Channel = "console"

// Run prints a greeting, then reads lines until In ends (it returns nil) or
// ctx ends (it returns nil; a read blocked on a terminal is abandoned, as
// the process is about to exit). Each line is run as a command and its
// reply printed. The error is that of a failed write.
func (c *Chat) Run(ctx context.Context) error {
	if err := c.out.write(painter(c.opts.Color).paint(dim, "vmtriage console — type "+bot.Prefix+" help for commands, Ctrl-C to quit.") + "\n"); err != nil {
		return err
	}
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		r := bufio.NewReader(c.opts.In)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case line := <-lines:
			if err := c.handle(ctx, line); err != nil {
				return err
			}
		}
	}
}

func (c *Chat) handle(ctx context.Context, line string) error {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	if strings.HasPrefix(line, "/") && !strings.HasPrefix(line, bot.Prefix) {
		return c.out.write(RenderReply(bot.Reply{
			Title: "Only " + bot.Prefix + " commands work here; try " + bot.Prefix + " help.",
			Tone:  bot.ToneWarning,
		}, c.opts.Color))
	}
	cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	reply := c.opts.Router.HandleText(cctx, line, bot.Command{User: c.opts.User, Channel: Channel, Origin: bot.OriginConsole})
	return c.out.write(RenderReply(reply, c.opts.Color) + "\n")
}

// PosterOptions configures a standalone Poster (for replay, or when there
// is no chat). Out is required.
type PosterOptions struct {
	Out   io.Writer
	Color bool
	Clock clock.Clock // default clock.Real{}
}

// Poster prints incident notifications (see RenderNotification). It is
// safe for concurrent use.
type Poster struct {
	out *output
}

// NewPoster returns a Poster writing to opts.Out. To share a terminal with
// a Chat, use Chat.Poster instead, which shares the chat's lock.
func NewPoster(opts PosterOptions) *Poster {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Poster{out: &output{w: opts.Out, color: opts.Color, clock: opts.Clock}}
}

// Post prints n. A write error is returned so the Notifier retries.
func (p *Poster) Post(_ context.Context, n bot.Notification) error {
	return p.out.write(RenderNotification(n, p.out.clock.Now(), p.out.color))
}

// IsTerminal reports whether f is a terminal (a character device), the
// condition for colour. golang.org/x/term is not a dependency of the
// module; a character device is a good enough test for "a person is
// looking" (/dev/null is one too, but nobody reads colours there).
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// UseColor reports whether to colour output to f: only on a terminal, and
// not when the NO_COLOR convention or TERM=dumb asks otherwise.
func UseColor(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return IsTerminal(f)
}
