package prometheus

import (
	"errors"
	"fmt"

	promclient "github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	polls       *promclient.CounterVec
	errors      *promclient.CounterVec
	lastSuccess promclient.Gauge
	hosts       promclient.Gauge
}

func newMetrics(reg promclient.Registerer) (*metrics, error) {
	m := &metrics{
		polls: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "vmtriage_prometheus_polls_total",
			Help: "Collection periods read from Prometheus and exporters, by result (ok, partial, failed).",
		}, []string{"result"}),
		errors: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "vmtriage_prometheus_errors_total",
			Help: "Prometheus collector errors, by kind (query, scrape, sample, record, sink).",
		}, []string{"kind"}),
		lastSuccess: promclient.NewGauge(promclient.GaugeOpts{
			Name: "vmtriage_prometheus_last_success_timestamp_seconds",
			Help: "When the last poll whose every query and scrape worked finished (Unix time).",
		}),
		hosts: promclient.NewGauge(promclient.GaugeOpts{
			Name: "vmtriage_prometheus_hosts",
			Help: "Hosts the last poll sent facts for.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []promclient.Collector{m.polls, m.errors, m.lastSuccess, m.hosts} {
		if err := reg.Register(col); err != nil {
			var are promclient.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("prometheus collector metrics: already registered (one collector per registry): %w", err)
			}
			return nil, fmt.Errorf("register prometheus collector metrics: %w", err)
		}
	}
	return m, nil
}
