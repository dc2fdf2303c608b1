package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
)

// Router runs command text as the user who sent it. *bot.Router
// implements it; it checks permissions and the incident's current state on
// every call, whatever the command came from.
type Router interface {
	HandleText(ctx context.Context, text string, from bot.Command) bot.Reply
}

var _ Router = (*bot.Router)(nil)

// CommandActionPrefix starts the action_id of every button that runs a
// command ("vmtriage:cmd:0"); the button's value is the command text.
const CommandActionPrefix = "vmtriage:cmd:"

// DefaultResponseURLPrefix is where Slack's response_url points.
const DefaultResponseURLPrefix = "https://hooks.slack.com/"

// Defaults of InboundOptions.
const (
	// DefaultInlineWait leaves a second of Slack's 3-second deadline for
	// the network.
	DefaultInlineWait = 2 * time.Second
	// DefaultWorkTimeout bounds a command answered through response_url.
	DefaultWorkTimeout = time.Minute
	// replyAttempts bounds the posts of one reply: Slack accepts five
	// uses of a response_url, and a reply that late is of little use.
	replyAttempts = 3
)

// InboundOptions configures an Inbound.
type InboundOptions struct {
	// Router runs the commands (required).
	Router Router
	// ResponseURLPrefixes are the only URL prefixes a reply is posted to;
	// default DefaultResponseURLPrefix plus the origin of APIURL. A
	// response_url is data from the request, so it is checked like any.
	ResponseURLPrefixes []string
	// APIURL is the Web API base URL (VMTRIAGE_SLACK_API_URL); its
	// scheme and host are allowed as a response_url prefix.
	APIURL string
	// HTTPClient posts to response_url; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// InlineWait is how long a slash command may take to be answered in
	// the acknowledgement itself; a slower one is acknowledged empty and
	// answered through response_url. Default DefaultInlineWait.
	InlineWait time.Duration
	// WorkTimeout bounds a command answered through response_url;
	// default DefaultWorkTimeout.
	WorkTimeout time.Duration
	// Sleep waits between attempts to post a reply; default a timer.
	// Tests replace it so that no test waits on the wall clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Registerer takes the counters; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger // default discards
}

// Inbound turns slash commands and button clicks, from HTTP or Socket
// Mode, into commands for the Router, and its replies into Block Kit. It
// is safe for concurrent use.
type Inbound struct {
	router      Router
	prefixes    []string
	client      *http.Client
	inlineWait  time.Duration
	workTimeout time.Duration
	sleep       func(ctx context.Context, d time.Duration) error
	log         *slog.Logger
	commands    *prometheus.CounterVec
	postErrors  prometheus.Counter

	wg sync.WaitGroup
}

// NewInbound returns an Inbound.
func NewInbound(opts InboundOptions) (*Inbound, error) {
	if opts.Router == nil {
		return nil, errors.New("new slack inbound: Options.Router is required")
	}
	prefixes := opts.ResponseURLPrefixes
	if len(prefixes) == 0 {
		prefixes = []string{DefaultResponseURLPrefix}
		if opts.APIURL != "" {
			u, err := url.Parse(opts.APIURL)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("new slack inbound: API URL %q is not a URL", opts.APIURL)
			}
			prefixes = append(prefixes, u.Scheme+"://"+u.Host+"/")
		}
	}
	for _, p := range prefixes {
		// A prefix without its final slash would let "https://hooks.slack.com.evil/" through.
		if !strings.HasSuffix(p, "/") || !strings.Contains(p, "://") {
			return nil, fmt.Errorf("new slack inbound: response URL prefix %q must be scheme://host/...", p)
		}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.InlineWait <= 0 {
		opts.InlineWait = DefaultInlineWait
	}
	if opts.WorkTimeout <= 0 {
		opts.WorkTimeout = DefaultWorkTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	in := &Inbound{
		router: opts.Router, prefixes: prefixes, client: opts.HTTPClient,
		inlineWait: opts.InlineWait, workTimeout: opts.WorkTimeout, sleep: opts.Sleep, log: opts.Logger,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_slack_commands_total",
			Help: "Commands received from Slack, by origin (typed, button) and how they were answered (inline, response_url, none).",
		}, []string{"origin", "answer"}),
		postErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_slack_response_url_errors_total",
			Help: "Replies that could not be posted to a response_url (refused URL or failed post).",
		}),
	}
	if opts.Registerer != nil {
		var err error
		if in.commands, err = register(opts.Registerer, in.commands); err != nil {
			return nil, err
		}
		if in.postErrors, err = register(opts.Registerer, in.postErrors); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Routes returns the HTTP routes for httpapi's Options.Extra, each behind
// v: POST /slack/commands and POST /slack/interactions.
func (in *Inbound) Routes(v *Verifier) map[string]http.Handler {
	return map[string]http.Handler{
		"POST /slack/commands":     v.Wrap(http.HandlerFunc(in.ServeCommand)),
		"POST /slack/interactions": v.Wrap(http.HandlerFunc(in.ServeInteraction)),
	}
}

// Wait waits for every reply still being worked on or posted.
func (in *Inbound) Wait() { in.wg.Wait() }

// ServeCommand answers a slash command. It must sit behind a Verifier:
// it parses the body as is.
func (in *Inbound) ServeCommand(w http.ResponseWriter, r *http.Request) {
	sc, err := goslack.SlashCommandParse(r)
	if err != nil {
		http.Error(w, "unreadable slash command", http.StatusBadRequest)
		return
	}
	msg := in.Command(r.Context(), sc)
	if msg == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(msg); err != nil {
		in.log.Warn("write slash command reply", "err", err)
	}
}

// ServeInteraction acknowledges a click at once and answers it through
// its response_url. It must sit behind a Verifier.
func (in *Inbound) ServeInteraction(w http.ResponseWriter, r *http.Request) {
	ic, err := goslack.InteractionCallbackParse(r)
	if err != nil {
		http.Error(w, "unreadable interaction payload", http.StatusBadRequest)
		return
	}
	in.Interaction(r.Context(), ic)
	w.WriteHeader(http.StatusOK)
}

// Command runs a slash command. If the Router answers within InlineWait it
// returns the reply message, to be sent as the acknowledgement; otherwise
// it returns nil (acknowledge empty) and posts the reply to the command's
// response_url when it is ready.
func (in *Inbound) Command(ctx context.Context, sc goslack.SlashCommand) *goslack.WebhookMessage {
	from := bot.Command{User: sc.UserID, Channel: sc.ChannelID, Origin: bot.OriginTyped, ResponseURL: sc.ResponseURL}
	return in.run(ctx, sc.Text, from, true)
}

// Interaction runs the command of every command button in a block_actions
// callback; each reply is posted to the callback's response_url. Other
// interactions (link buttons, which Slack also reports) need no answer.
func (in *Inbound) Interaction(ctx context.Context, ic goslack.InteractionCallback) {
	if ic.Type != goslack.InteractionTypeBlockActions {
		in.log.Debug("slack interaction ignored", "type", string(ic.Type))
		return
	}
	for _, a := range ic.ActionCallback.BlockActions {
		if a == nil || !strings.HasPrefix(a.ActionID, CommandActionPrefix) {
			continue
		}
		from := bot.Command{User: ic.User.ID, Channel: ic.Channel.ID, Origin: bot.OriginButton, ResponseURL: ic.ResponseURL}
		in.run(ctx, a.Value, from, false)
	}
}

// run hands text to the Router in a goroutine of its own, so that a slow
// command cannot hold the acknowledgement past Slack's deadline. With
// inline, it waits up to InlineWait and returns the message; when the wait
// ends first (or without inline) the goroutine posts the reply to
// from.ResponseURL instead.
func (in *Inbound) run(ctx context.Context, text string, from bot.Command, inline bool) *goslack.WebhookMessage {
	result := make(chan bot.Reply)
	late := make(chan struct{})
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		// The request ends with the acknowledgement; the work must not.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.workTimeout)
		defer cancel()
		reply := in.router.HandleText(wctx, text, from)
		select {
		case result <- reply:
		case <-late:
			in.postReply(wctx, from, reply)
		}
	}()
	if !inline {
		close(late)
		return nil
	}
	timer := time.NewTimer(in.inlineWait)
	defer timer.Stop()
	select {
	case reply := <-result:
		in.commands.WithLabelValues(string(from.Origin), "inline").Inc()
		return replyMessage(reply)
	case <-timer.C:
	case <-ctx.Done():
	}
	close(late)
	return nil
}

// postReply posts reply to from.ResponseURL, if it is one of the allowed
// prefixes.
func (in *Inbound) postReply(ctx context.Context, from bot.Command, reply bot.Reply) {
	log := in.log.With("user", from.User, "channel", from.Channel, "origin", string(from.Origin))
	if !in.allowedURL(from.ResponseURL) {
		in.commands.WithLabelValues(string(from.Origin), "none").Inc()
		in.postErrors.Inc()
		// Log the host only: the path of a response_url is a credential.
		log.Warn("reply not posted: response_url is not an allowed Slack URL", "response_host", urlHost(from.ResponseURL))
		return
	}
	msg := replyMessage(reply)
	for attempt := 1; ; attempt++ {
		err := goslack.PostWebhookCustomHTTPContext(ctx, from.ResponseURL, in.client, msg)
		if err == nil {
			in.commands.WithLabelValues(string(from.Origin), "response_url").Inc()
			return
		}
		// The same mapping as incident posts: 429 waits Retry-After,
		// 5xx and network failures back off, anything else is final.
		se := slackError("post reply to response_url", "", "", redactURLError(err))
		if se.Permanent() || attempt == replyAttempts {
			in.commands.WithLabelValues(string(from.Origin), "none").Inc()
			in.postErrors.Inc()
			log.Warn("reply not posted", "response_host", urlHost(from.ResponseURL), "attempts", attempt, "err", se)
			return
		}
		wait := se.RetryAfter()
		if wait <= 0 {
			wait = time.Duration(attempt) * time.Second
		}
		log.Debug("post reply to response_url failed; retrying", "attempt", attempt, "wait", wait.String(), "err", se)
		if err := in.sleep(ctx, wait); err != nil {
			in.commands.WithLabelValues(string(from.Origin), "none").Inc()
			in.postErrors.Inc()
			log.Warn("reply not posted: gave up waiting to retry", "response_host", urlHost(from.ResponseURL), "err", err)
			return
		}
	}
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *Inbound) allowedURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	for _, p := range in.prefixes {
		if strings.HasPrefix(raw, p) {
			return true
		}
	}
	return false
}

func urlHost(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}

// redactURLError drops the URL from a *url.Error, keeping what failed.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s response_url: %w", ue.Op, ue.Err)
	}
	return err
}

// replyMessage renders a Reply as a message for an acknowledgement or a
// response_url. It never replaces the message a button sits on: incident
// messages are updated by the poster, from the incident's state.
func replyMessage(r bot.Reply) *goslack.WebhookMessage {
	blocks, text := ReplyBlocks(r)
	msg := &goslack.WebhookMessage{Text: text, ResponseType: goslack.ResponseTypeEphemeral}
	if len(blocks) > 0 {
		msg.Blocks = &goslack.Blocks{BlockSet: blocks}
	}
	if r.Visibility == bot.InChannel {
		msg.ResponseType = goslack.ResponseTypeInChannel
	}
	return msg
}
