package azurehealth

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	polls       *prometheus.CounterVec
	errors      *prometheus.CounterVec
	sent        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	vms         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_azurehealth_polls_total",
			Help: "Azure Resource Health polls, by result (ok, partial, failed).",
		}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_azurehealth_errors_total",
			Help: "Azure Resource Health errors, by kind (http, throttled, token, record, sink, tags, inventory).",
		}, []string{"kind"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_azurehealth_observations_total",
			Help: "Observations sent, by type (baseline, change, heartbeat).",
		}, []string{"type"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmtriage_azurehealth_last_success_timestamp_seconds",
			Help: "When the last poll that listed every subscription completely finished (Unix time).",
		}),
		vms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmtriage_azurehealth_vms",
			Help: "VMs the collector knows.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.polls, m.errors, m.sent, m.lastSuccess, m.vms} {
		if err := reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("azure resource health metrics: already registered (one collector per registry): %w", err)
			}
			return nil, fmt.Errorf("register azure resource health metrics: %w", err)
		}
	}
	return m, nil
}
