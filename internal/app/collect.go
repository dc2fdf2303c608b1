package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/vmtriage/vmtriage/collectors/alertmanager"
	"github.com/vmtriage/vmtriage/collectors/azurehealth"
	"github.com/vmtriage/vmtriage/collectors/heartbeat"
	"github.com/vmtriage/vmtriage/collectors/libvirt"
	promcol "github.com/vmtriage/vmtriage/collectors/prometheus"
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
			Tokens: cfg.HeartbeatTokens, Hosts: cfg.HeartbeatHosts, Sink: st,
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
			// VMs' "service" tags feed the inventory's azure-tags layer
			// (every 10th poll, replacing the layer).
			Inventory: st,
		})
		if err != nil {
			return p, fmt.Errorf("start azure resource health collector: %w", err)
		}
		p.runners = append(p.runners, runner{"azure resource health", az.Run})
	}
	if cfg.LibvirtURIs != "" {
		targets, err := libvirt.ParseTargets(cfg.LibvirtURIs)
		if err != nil {
			return p, fmt.Errorf("VMTRIAGE_LIBVIRT_URIS: %w", err)
		}
		lc, err := libvirt.New(libvirt.Options{
			Targets: targets, Site: cfg.LibvirtSite, Interval: cfg.LibvirtInterval, RPCTimeout: cfg.LibvirtRPCTimeout,
			Sink: st, Clock: clk, Logger: log.With("component", "libvirt"), Registerer: reg,
			// Domains' <vmtriage:service> metadata feeds the inventory's
			// libvirt-metadata layer (the lowest in precedence).
			Inventory: st,
		})
		if err != nil {
			return p, fmt.Errorf("VMTRIAGE_LIBVIRT_URIS: %w", err)
		}
		p.runners = append(p.runners, runner{"libvirt collector", lc.Run})
	}

	if cfg.PrometheusURL != "" || cfg.PrometheusScrapeTargets != "" {
		pc, err := newPrometheus(cfg, st, clk, log, reg)
		if err != nil {
			return p, err
		}
		p.runners = append(p.runners, runner{"prometheus collector", pc.Run})
	}
	return p, nil
}

// newPrometheus builds the host hardware collector from the PROMETHEUS_*
// variables; each error names the variable at fault.
func newPrometheus(cfg config.Config, st *store.Store, clk clock.Clock, log *slog.Logger, reg prometheus.Registerer) (*promcol.Collector, error) {
	hosts, err := promcol.ParseHosts(cfg.PrometheusHosts)
	if err != nil {
		return nil, fmt.Errorf("VMTRIAGE_PROMETHEUS_HOSTS: %w", err)
	}
	targets, err := promcol.ParseTargets(cfg.PrometheusScrapeTargets)
	if err != nil {
		return nil, fmt.Errorf("VMTRIAGE_PROMETHEUS_SCRAPE_TARGETS: %w", err)
	}
	var queries map[string]string
	if cfg.PrometheusQueries != "" {
		if queries, err = loadQueries(cfg.PrometheusQueries); err != nil {
			return nil, fmt.Errorf("VMTRIAGE_PROMETHEUS_QUERIES: %w", err)
		}
	}
	scrape := promcol.DefaultScrapeRules()
	if cfg.PrometheusScrapeFormat == "telegraf" {
		scrape = promcol.TelegrafScrapeRules()
	}
	pc, err := promcol.New(promcol.Options{
		URL: cfg.PrometheusURL, BearerToken: cfg.PrometheusToken, Hosts: hosts, Site: cfg.PrometheusSite,
		Queries: queries, Interval: cfg.PrometheusInterval, Targets: targets, ScrapeRules: scrape,
		Sink: st, Clock: clk, Logger: log.With("component", "prometheus"), Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start prometheus collector: %w", err)
	}
	return pc, nil
}

// loadQueries reads a YAML file of fact: PromQL. Unknown facts are refused
// by name, so a misspelt fact does not silently keep its default.
func loadQueries(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var q map[string]string
	if err := yaml.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	known := promcol.Facts()
	for _, fact := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(known, fact) {
			return nil, fmt.Errorf("%s: unknown fact %q (known: %s)", path, fact, strings.Join(known, ", "))
		}
	}
	return q, nil
}
