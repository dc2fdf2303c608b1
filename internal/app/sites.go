package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/collectors/sites"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store"
)

// addSites turns on registered sites when VMTRIAGE_SITES_TOKEN is set:
// POST/GET /v1/sites, DELETE /v1/sites/{site}, and the manager that polls
// the registered endpoints. owner names this replica in endpoint leases.
func addSites(p *collectorParts, cfg config.Config, st *store.Store, owner string, clk clock.Clock, log *slog.Logger, reg prometheus.Registerer) error {
	if !cfg.SitesToken.Set() {
		return nil
	}
	client, err := sitesClient(cfg.SitesCAFile)
	if err != nil {
		return err
	}
	log = log.With("component", "sites")
	kinds := sites.DefaultKinds()
	h, err := sites.NewHandler(sites.HandlerOptions{
		Token: cfg.SitesToken, Book: st, Kinds: kinds, FailAfter: cfg.SitesFailAfter,
		Clock: clk, Logger: log, Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("VMTRIAGE_SITES_TOKEN: %w", err)
	}
	m, err := sites.NewManager(sites.ManagerOptions{
		Registry: st, Sink: st, Kinds: kinds, Owner: owner,
		Interval: cfg.SitesInterval, PollInterval: cfg.SitesPollInterval, FailAfter: cfg.SitesFailAfter,
		HTTPClient: client, Clock: clk, Logger: log, Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("start registered sites: %w", err)
	}
	for pattern, route := range h.Routes() {
		p.routes[pattern] = route
	}
	p.runners = append(p.runners, runner{"registered sites", m.Run})
	return nil
}

// sitesClient is the one HTTP client for every registered endpoint: TLS
// 1.2 or later, verified against the system's CAs and those of caFile.
func sitesClient(caFile string) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("VMTRIAGE_SITES_CA_FILE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("VMTRIAGE_SITES_CA_FILE: %s holds no PEM certificate", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Transport: tr, Timeout: sites.DefaultPollTimeout + 5*time.Second}, nil
}
