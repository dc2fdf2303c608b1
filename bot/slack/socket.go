package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// SocketOptions configures a Socket.
type SocketOptions struct {
	// API is a client built with the bot token and
	// goslack.OptionAppLevelToken(VMTRIAGE_SLACK_APP_TOKEN) (required).
	API *goslack.Client
	// Inbound handles what arrives (required).
	Inbound *Inbound
	// SocketOptions are passed to socketmode.New (tests pass a dialer).
	SocketOptions []socketmode.Option
	Logger        *slog.Logger // default discards
}

// Socket receives slash commands and button clicks over Socket Mode, so
// that vmtriage needs no public URL. Slack authenticates the connection
// with the app-level token, so there is no signing secret to check.
type Socket struct {
	client *socketmode.Client
	in     *Inbound
	log    *slog.Logger
}

// NewSocket returns a Socket; Run connects it.
func NewSocket(opts SocketOptions) (*Socket, error) {
	switch {
	case opts.API == nil:
		return nil, errors.New("new slack socket: Options.API is required")
	case opts.Inbound == nil:
		return nil, errors.New("new slack socket: Options.Inbound is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// socketmode logs to stderr unless told otherwise; send it to ours.
	smOpts := append([]socketmode.Option{
		socketmode.OptionLog(slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)),
	}, opts.SocketOptions...)
	return &Socket{client: socketmode.New(opts.API, smOpts...), in: opts.Inbound, log: opts.Logger}, nil
}

// Run connects to Slack, handles every request until ctx ends, and then
// waits for the commands still running. It returns an error only when
// Slack refuses the connection for good (a bad or revoked app token);
// socketmode reconnects on its own after network errors and on Slack's
// disconnect requests.
func (s *Socket) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.client.RunContext(ctx) }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			// socketmode gives up only on a refused token.
			return fmt.Errorf("connect: %w (is the app-level token valid, with connections:write?)", err)
		case evt := <-s.client.Events:
			// A slash command may wait up to InlineWait for its answer;
			// it must not hold up the requests behind it.
			wg.Go(func() { s.handle(ctx, evt, s.client) })
		}
	}
}

// acker acknowledges a Socket Mode request; *socketmode.Client is one.
type acker interface {
	Ack(req socketmode.Request, payload ...any) error
}

// handle answers one Socket Mode event. Every request that carries an
// envelope is acknowledged, including those vmtriage does not handle, so
// Slack does not retry them.
func (s *Socket) handle(ctx context.Context, evt socketmode.Event, a acker) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		s.log.Debug("slack socket mode connecting")
		return
	case socketmode.EventTypeConnected:
		s.log.Info("slack socket mode connected")
		return
	case socketmode.EventTypeConnectionError:
		if e, ok := evt.Data.(*goslack.ConnectionErrorEvent); ok {
			s.log.Warn("slack socket mode connection failed; retrying", "attempt", e.Attempt, "backoff", e.Backoff, "err", e.ErrorObj)
		}
		return
	case socketmode.EventTypeInvalidAuth:
		s.log.Error("slack refused the app token (VMTRIAGE_SLACK_APP_TOKEN)")
		return
	case socketmode.EventTypeErrorBadMessage:
		s.log.Warn("slack socket mode sent a message that could not be read")
		return
	}
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		// hello and disconnect carry no envelope and want no ack.
		return
	}
	var payload any
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(goslack.SlashCommand)
		if !ok {
			s.log.Warn("slack socket mode slash command without a command", "data", fmt.Sprintf("%T", evt.Data))
			break
		}
		if msg := s.in.Command(ctx, sc); msg != nil {
			payload = msg
		}
	case socketmode.EventTypeInteractive:
		ic, ok := evt.Data.(goslack.InteractionCallback)
		if !ok {
			s.log.Warn("slack socket mode interaction without a callback", "data", fmt.Sprintf("%T", evt.Data))
			break
		}
		// Clicks are answered through response_url, after the ack.
		s.in.Interaction(ctx, ic)
	default:
		s.log.Debug("slack socket mode request ignored", "type", string(evt.Type))
	}
	var err error
	if payload != nil {
		err = a.Ack(*evt.Request, payload)
	} else {
		err = a.Ack(*evt.Request)
	}
	if err != nil {
		s.log.Warn("acknowledge slack socket mode request", "type", string(evt.Type), "err", err)
	}
}
