package libvirt

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	polls       *prometheus.CounterVec
	errors      *prometheus.CounterVec
	sent        *prometheus.CounterVec
	events      prometheus.Counter
	lastSuccess prometheus.Gauge
	connected   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_libvirt_polls_total",
			Help: "libvirt listings of the whole fleet, by result (ok, partial, failed).",
		}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_libvirt_errors_total",
			Help: "libvirt collector errors, by kind (connect, events, list, record, sink, metadata, inventory).",
		}, []string{"kind"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_libvirt_observations_total",
			Help: "Observations sent, by type (listing, event, service).",
		}, []string{"type"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_libvirt_lifecycle_events_total",
			Help: "Domain lifecycle events received from every libvirtd.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmtriage_libvirt_last_success_timestamp_seconds",
			Help: "When the last poll that listed every connected host without error finished (Unix time).",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmtriage_libvirt_connected_hosts",
			Help: "Hosts whose libvirtd the collector is connected to.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.polls, m.errors, m.sent, m.events, m.lastSuccess, m.connected} {
		if err := reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("libvirt metrics: already registered (one collector per registry): %w", err)
			}
			return nil, fmt.Errorf("register libvirt metrics: %w", err)
		}
	}
	return m, nil
}
