// Package app wires vmtriage together: Redis, the state store, the rules
// engine, the ingest pipeline, the bot and the HTTP server. Serve runs the
// service until its context ends, so a test can boot the whole thing on
// 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	botslack "github.com/vmtriage/vmtriage/bot/slack"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/httpapi"
	"github.com/vmtriage/vmtriage/internal/ingest"
	"github.com/vmtriage/vmtriage/internal/latency"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/remedy"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/inventory"
	"github.com/vmtriage/vmtriage/knowledge"
	"github.com/vmtriage/vmtriage/rules"
	"github.com/vmtriage/vmtriage/tickets/ticketverb"
)

// Options are what Serve needs beyond the configuration.
type Options struct {
	Config config.Config
	Logger *slog.Logger
	Clock  clock.Clock
	// NewPoster builds what receives incident notifications when Slack is
	// not configured (the demo's console); nil logs them.
	NewPoster func(svc *Service) (bot.Poster, error)
	// TickInterval overrides how often the engine's timers are checked
	// (the demo runs a fast clock).
	TickInterval time.Duration
	// Prefix overrides the Redis key prefix (tests use a unique one).
	Prefix string
	// Ready, if set, is called once the HTTP server listens, with its
	// address and the running service.
	Ready func(addr string, svc *Service)
	// Actuator, if set, carries out remedies instead of the one
	// VMTRIAGE_REMEDY_ACTUATOR names (the demo's simulated fleet).
	Actuator remedy.Actuator
}

// Service is a running vmtriage, exposed so that the demo and tests can
// reach its parts.
type Service struct {
	Store    *store.Store
	Engine   *rules.Engine
	Router   *bot.Router
	Pipeline *ingest.Pipeline
	Addr     string
	// Inventory holds the relations VM → service → team and answers
	// impact questions.
	Inventory *inventory.Manager
}

// Serve runs the service until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	rdb, closeRedis, err := connectRedis(ctx, cfg.RedisURL, log)
	if err != nil {
		return err
	}
	defer closeRedis()

	set, err := loadRules(cfg.RulesPath)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st := store.New(store.Options{Client: rdb, Prefix: opts.Prefix, Clock: clk, Period: set.Settings.Period, Logger: log.With("component", "store")})
	kb, err := knowledge.New(knowledge.Options{Path: cfg.KBPath, BaseURL: cfg.KBBaseURL, ServerURL: cfg.PublicURL,
		Notes: st, Clock: clk, Logger: log.With("component", "knowledge")})
	if err != nil {
		return fmt.Errorf("VMTRIAGE_KB_PATH: %w", err)
	}
	inv, err := newInventory(ctx, cfg, st, clk, log.With("component", "inventory"))
	if err != nil {
		return err
	}
	engine, err := rules.NewEngine(ctx, rules.Options{Rules: set, Store: st, Clock: clk, Logger: log.With("component", "rules"),
		Registerer: reg, TickInterval: opts.TickInterval, Runbooks: kb.Links, Services: inv.IncidentServices,
		Impact: ruleImpact(inv)})
	if err != nil {
		return fmt.Errorf("start rules engine: %w", err)
	}
	sl, err := newSlack(cfg, clk, log.With("component", "slack"))
	if err != nil {
		return err
	}
	router, err := bot.NewRouter(bot.Options{
		Incidents:   st,
		Fleet:       st,
		Actions:     actions{Engine: engine, st: st},
		Permissions: bot.Permissions{Ack: cfg.Operators, Approve: cfg.Approvers},
		Membership:  sl.membership,
		Auditor:     auditor{st: st, log: log.With("component", "audit")},
		NotFound:    func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Clock:       clk,
		Logger:      log.With("component", "bot"),
	})
	if err != nil {
		return fmt.Errorf("start bot router: %w", err)
	}
	tracker := latency.New(latency.Options{Window: cfg.LatencyWindow, StoppedAfter: set.Settings.StoppedReporting, Clock: clk})
	for _, v := range []bot.Verb{kbVerb(kb), resolveVerb(st), latencyVerb(tracker), impactVerb(inv), ownerVerb(inv)} {
		if err := router.Register(v); err != nil {
			return fmt.Errorf("start bot router: %w", err)
		}
	}
	coll, err := newCollectors(cfg, st, clk, log, reg)
	if err != nil {
		return err
	}
	replica := cfg.Replica
	if replica == "" {
		h, _ := os.Hostname()
		replica = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if err := addSites(&coll, cfg, st, replica, clk, log, reg); err != nil {
		return err
	}
	tk, err := newTickets(cfg, st, replica, inv.JiraOwner, clk, log.With("component", "tickets"), reg)
	if err != nil {
		return err
	}
	if tk != nil {
		if err := router.Register(ticketverb.Verb(tk)); err != nil {
			return fmt.Errorf("start bot router: %w", err)
		}
	}
	rem, err := newRemedies(cfg, remedyDeps{Store: st, Recovery: engine, Membership: sl.membership, Actuator: opts.Actuator,
		Replica: replica, Notes: ticketNotes(tk), Services: inventoryServices{inv}, Clock: clk, Logger: log.With("component", "remedy")})
	if err != nil {
		return err
	}
	for _, v := range rem.verbs() {
		if err := router.Register(v); err != nil {
			return fmt.Errorf("start bot router: %w", err)
		}
	}
	ingestMetrics := ingest.NewMetrics(reg)
	var pipelines []*ingest.Pipeline
	for i := range cfg.Workers {
		p, err := ingest.New(ingest.Options{
			Stream: st, Evaluator: tracker.Tee(engine), Consumer: fmt.Sprintf("%s-%d", replica, i),
			ReclaimIdle: cfg.ReclaimIdle, Clock: clk, Logger: log.With("component", "ingest"), Metrics: ingestMetrics,
		})
		if err != nil {
			return err
		}
		pipelines = append(pipelines, p)
	}
	svc := &Service{Store: st, Engine: engine, Router: router, Pipeline: pipelines[0], Inventory: inv}
	var poster bot.Poster = logPoster{log: log.With("component", "notify")}
	switch {
	case sl.api != nil:
		if poster, err = botslack.NewPoster(botslack.PosterOptions{
			Client: sl.api, Store: st, DefaultChannel: cfg.SlackChannel,
			SiteChannels: cfg.SlackSiteChannels, SeverityChannels: cfg.SlackSeverityChannels, OwnerChannels: inv.OwnerChannels,
			OwnerGroups: inv.OwnerGroups, Clock: clk, Logger: log.With("component", "slack"),
		}); err != nil {
			return fmt.Errorf("start slack notifications: %w", err)
		}
	case opts.NewPoster != nil:
		if poster, err = opts.NewPoster(svc); err != nil {
			return fmt.Errorf("start notifications: %w", err)
		}
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = store.DefaultPrefix
	}
	slackRoutes, socket, inbound, err := sl.inbound(cfg, router, botslack.RedisSeen{Client: rdb, Prefix: prefix}, reg, clk)
	if err != nil {
		return err
	}
	books, err := newOutages(cfg, st, replica, inventoryServices{inv}, clk, log.With("component", "outage"))
	if err != nil {
		return fmt.Errorf("start outage books: %w", err)
	}
	var uploader chartUploader
	if sl.api != nil {
		uploader = botslack.Uploader{API: sl.api}
	}
	if err := router.Register(reportVerb(books.reporter, uploader, cfg.PublicURL, log.With("component", "outage"))); err != nil {
		return fmt.Errorf("start bot router: %w", err)
	}
	extra := map[string]http.Handler{
		"GET /kb/":        kb.Handler(),
		"GET /v1/latency": latency.Handler(tracker),
		"GET /v1/audit":   auditHandler(st),
	}
	maps.Copy(extra, coll.routes)
	maps.Copy(extra, inv.Routes())
	maps.Copy(extra, slackRoutes)
	maps.Copy(extra, books.routes)
	extra["GET /v1/remedies"] = remediesHandler(st)
	notifier, err := bot.NewNotifier(bot.NotifierOptions{
		Events: events{st}, Poster: poster, Consumer: replica, Fixes: kbFixes{kb},
		Clock: clk, Logger: log.With("component", "notifier"),
	})
	if err != nil {
		return fmt.Errorf("start notifier: %w", err)
	}

	api := httpapi.New(httpapi.Options{
		Ingester: st, Reader: st, Ready: st,
		NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Gatherer: reg, Registerer: reg, MaxBody: cfg.MaxBody, Clock: clk, Logger: log.With("component", "http"),
		Extra: extra,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (VMTRIAGE_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("vmtriage serving", "addr", ln.Addr().String(), "replica", replica,
		"rules", len(set.Rules), "period", set.Settings.Period, "slack", sl.mode(cfg), "jira", cfg.JiraURL != "")

	var wg sync.WaitGroup
	errc := make(chan error, 8)
	start := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	for _, p := range pipelines {
		start("ingest", p.Run)
	}
	start("rules engine", engine.Run)
	start("notifier", notifier.Run)
	start("outage books", books.books.Run)
	if socket != nil {
		start("slack socket mode", socket.Run)
	}
	if tk != nil {
		start("jira tickets", tk.Run)
	}
	for _, r := range append(coll.runners, rem.runners()...) {
		start(r.name, r.run)
	}
	start("inventory", func(ctx context.Context) error { inv.Run(ctx, 5*time.Second); return nil })
	if cfg.KBPath != "" {
		start("knowledge watcher", func(ctx context.Context) error { kb.Run(ctx, 5*time.Second); return nil })
	}
	if cfg.RulesPath != "" {
		start("rules watcher", func(ctx context.Context) error {
			engine.WatchFiles(ctx, []string{cfg.RulesPath}, 5*time.Second)
			return nil
		})
		start("sighup", func(ctx context.Context) error { return reloadOnHUP(ctx, engine, cfg.RulesPath, log) })
	}
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	})
	svc.Addr = ln.Addr().String()
	if opts.Ready != nil {
		opts.Ready(svc.Addr, svc)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error("component failed; shutting down", "err", runErr)
	}
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer shutCancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	// go-redis does not interrupt a blocking stream read when its context
	// ends; closing the client does, so consumers stop at once instead of
	// after their block time. What they had not acknowledged stays pending
	// for the next start or another replica.
	rdb.Close()
	wg.Wait()
	if inbound != nil {
		// Replies still on their way to a response_url.
		inbound.Wait()
	}
	log.Info("vmtriage stopped")
	return runErr
}

// connectRedis connects to url, or starts the embedded Redis when it is
// empty — loudly, because its state lives only in this process.
func connectRedis(ctx context.Context, url string, log *slog.Logger) (redis.UniversalClient, func(), error) {
	if url == "" {
		emb, err := store.StartEmbedded()
		if err != nil {
			return nil, nil, fmt.Errorf("start embedded redis: %w", err)
		}
		log.Warn("VMTRIAGE_REDIS_URL is empty: using an EMBEDDED in-memory Redis; all state is lost on exit and replicas cannot share it — set VMTRIAGE_REDIS_URL in production", "addr", emb.Addr())
		url = emb.URL()
		rdb, err := store.Connect(ctx, url)
		if err != nil {
			emb.Close()
			return nil, nil, fmt.Errorf("connect to embedded redis: %w", err)
		}
		return rdb, func() { rdb.Close(); emb.Close() }, nil
	}
	rdb, err := store.Connect(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to redis (VMTRIAGE_REDIS_URL): %w", err)
	}
	return rdb, func() { rdb.Close() }, nil
}

func loadRules(path string) (*rules.Set, error) {
	if path == "" {
		set, err := rules.Default()
		if err != nil {
			return nil, fmt.Errorf("load default rules: %w", err)
		}
		return set, nil
	}
	set, err := rules.LoadFiles(path)
	if err != nil {
		return nil, fmt.Errorf("load rules from %s (VMTRIAGE_RULES_PATH):\n%w", path, err)
	}
	return set, nil
}

// slackParts are the Slack pieces the configuration asks for: a Web API
// client and user-group membership when a bot token is set.
type slackParts struct {
	api        *goslack.Client
	membership bot.Membership
	log        *slog.Logger
}

// newSlack builds the Slack client when VMTRIAGE_SLACK_BOT_TOKEN is set:
// one client for the process, pointed at VMTRIAGE_SLACK_API_URL, with an
// HTTP timeout well inside the poster's lease.
func newSlack(cfg config.Config, clk clock.Clock, log *slog.Logger) (slackParts, error) {
	p := slackParts{log: log}
	if !cfg.SlackBotToken.Set() {
		return p, nil
	}
	opts := []goslack.Option{
		goslack.OptionAPIURL(cfg.SlackAPIURL),
		goslack.OptionHTTPClient(&http.Client{Timeout: 30 * time.Second}),
	}
	if cfg.SlackAppToken.Set() {
		opts = append(opts, goslack.OptionAppLevelToken(cfg.SlackAppToken.Reveal()))
	}
	p.api = goslack.New(cfg.SlackBotToken.Reveal(), opts...)
	m, err := botslack.NewMembership(botslack.MembershipOptions{API: p.api, Clock: clk, Logger: log})
	if err != nil {
		return p, fmt.Errorf("start slack: %w", err)
	}
	p.membership = m
	return p, nil
}

// inbound builds what receives commands and clicks: the HTTP routes when a
// signing secret is set, Socket Mode when an app token is.
func (p slackParts) inbound(cfg config.Config, router *bot.Router, seen botslack.SeenStore, reg prometheus.Registerer, clk clock.Clock) (
	map[string]http.Handler, *botslack.Socket, *botslack.Inbound, error) {
	if !cfg.SlackSigningSecret.Set() && !cfg.SlackAppToken.Set() {
		return nil, nil, nil, nil
	}
	in, err := botslack.NewInbound(botslack.InboundOptions{Router: router, APIURL: cfg.SlackAPIURL, Registerer: reg, Logger: p.log})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("start slack commands: %w", err)
	}
	var routes map[string]http.Handler
	if cfg.SlackSigningSecret.Set() {
		v, err := botslack.NewVerifier(botslack.VerifyOptions{
			SigningSecret: cfg.SlackSigningSecret, Seen: seen, Registerer: reg, Clock: clk, Logger: p.log,
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("start slack commands: %w", err)
		}
		routes = in.Routes(v)
	}
	var sock *botslack.Socket
	if cfg.SlackAppToken.Set() && p.api != nil {
		if sock, err = botslack.NewSocket(botslack.SocketOptions{API: p.api, Inbound: in, Logger: p.log}); err != nil {
			return nil, nil, nil, fmt.Errorf("start slack socket mode: %w", err)
		}
	}
	return routes, sock, in, nil
}

// mode names how Slack is connected, for the start-up log line.
func (p slackParts) mode(cfg config.Config) string {
	switch {
	case p.api == nil:
		return "off"
	case cfg.SlackAppToken.Set() && cfg.SlackSigningSecret.Set():
		return "socket+http"
	case cfg.SlackAppToken.Set():
		return "socket"
	}
	return "http"
}

// actions gives the bot what it may do: the engine acknowledges and
// silences, the store lists silences.
type actions struct {
	*rules.Engine
	st *store.Store
}

func (a actions) Silences(ctx context.Context) ([]model.Silence, error) { return a.st.Silences(ctx) }

var _ bot.ActionTaker = actions{}

// events adapts the store's incident stream to the notifier's event type.
type events struct{ st *store.Store }

var _ bot.EventSource = events{}

func (e events) ReadIncidentEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]bot.Event, error) {
	evs, err := e.st.ReadIncidentEvents(ctx, group, consumer, count, block)
	return convertEvents(evs), err
}

func (e events) ClaimIncidentEvents(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]bot.Event, error) {
	evs, err := e.st.ClaimIncidentEvents(ctx, group, consumer, minIdle, count)
	return convertEvents(evs), err
}

func (e events) AckIncidentEvents(ctx context.Context, group string, ids ...string) error {
	return e.st.AckIncidentEvents(ctx, group, ids...)
}

func convertEvents(evs []store.IncidentEvent) []bot.Event {
	out := make([]bot.Event, len(evs))
	for i, ev := range evs {
		out[i] = bot.Event{ID: ev.ID, Incident: ev.Incident}
	}
	return out
}

// logPoster writes notifications to the log when no chat is configured.
type logPoster struct{ log *slog.Logger }

func (p logPoster) Post(_ context.Context, n bot.Notification) error {
	inc := n.View.Incident
	p.log.Info("incident", "incident", inc.ID, "status", inc.Status, "rule", inc.Rule, "severity", inc.Severity,
		"cause", inc.Cause, "subject", inc.Subject, "action", inc.Action, "summary", inc.Summary)
	return nil
}

// NewLogger builds the service's logger from the configuration.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	o := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
