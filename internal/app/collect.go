package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/collectors/alertmanager"
	"github.com/vmtriage/vmtriage/collectors/azurehealth"
	"github.com/vmtriage/vmtriage/collectors/heartbeat"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store"
)

// runner is a long-running part of the service, started by Serve.
type runner struct {
	name string
	run  func(context.Context) error
}

// collectorParts are the collectors the configuration turns on: HTTP
// endpoints other systems push to, and pollers Serve runs.
type collectorParts struct {
	routes  map[string]http.Handler
	runners []runner
}

// newCollectors builds the collectors from the configuration. Every one
// feeds the same durable observation stream as POST /v1/observations.
func newCollectors(cfg config.Config, st *store.Store, clk clock.Clock, log *slog.Logger, reg prometheus.Registerer) (collectorParts, error) {
	p := collectorParts{routes: map[string]http.Handler{}}

	mapping := alertmanager.DefaultMapping()
	if cfg.AlertmanagerMapping != "" {
		m, err := alertmanager.LoadMapping(cfg.AlertmanagerMapping)
		if err != nil {
			return p, fmt.Errorf("VMTRIAGE_ALERTMANAGER_MAPPING: %w", err)
		}
		mapping = m
	}
	am, err := alertmanager.New(alertmanager.Options{
		Mapping: mapping, Token: cfg.AlertmanagerToken, Sink: st,
		Clock: clk, Logger: log.With("component", "alertmanager"), Registerer: reg,
	})
	if err != nil {
		return p, fmt.Errorf("start alertmanager receiver: %w", err)
	}
	p.routes["POST /v1/alertmanager"] = am

	if len(cfg.HeartbeatTokens) > 0 {
		hb, err := heartbeat.New(heartbeat.Options{
			Tokens: cfg.HeartbeatTokens, Sink: st,
			Clock: clk, Logger: log.With("component", "heartbeat"), Registerer: reg,
		})
		if err != nil {
			return p, fmt.Errorf("VMTRIAGE_HEARTBEAT_TOKENS: %w", err)
		}
		p.routes["POST /v1/heartbeats"] = hb
	}

	if len(cfg.AzureSubscriptions) > 0 {
		az, err := azurehealth.New(azurehealth.Options{
			Subscriptions: cfg.AzureSubscriptions, TenantID: cfg.AzureTenantID, ClientID: cfg.AzureClientID,
			ClientSecret: cfg.AzureClientSecret, Endpoint: cfg.AzureEndpoint, LoginEndpoint: cfg.AzureLoginEndpoint,
			Interval: cfg.AzureInterval, KeepAlive: cfg.AzureKeepAlive, QuietBaseline: cfg.AzureQuietBaseline,
			Sink: st, Clock: clk, Logger: log.With("component", "azurehealth"), Registerer: reg,
		})
		if err != nil {
			return p, fmt.Errorf("start azure resource health collector: %w", err)
		}
		p.runners = append(p.runners, runner{"azure resource health", az.Run})
	}
	return p, nil
}
