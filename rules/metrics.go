package rules

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/model"
)

// metrics are the engine's Prometheus metrics. Counters per scope are
// looked up once, so counting an evaluation never allocates.
type metrics struct {
	evals       [4]prometheus.Counter
	evalErrors  prometheus.Counter
	open        *prometheus.GaugeVec
	openPending prometheus.Gauge
	openFiring  prometheus.Gauge
	transitions *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	escalations prometheus.Counter
	storeErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var errs []error
	evals := register(reg, &errs, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmtriage_rule_evaluations_total",
		Help: "Rule and host-state expressions evaluated, by scope.",
	}, []string{"scope"}))
	m := &metrics{
		evalErrors: register(reg, &errs, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_rule_evaluation_errors_total",
			Help: "Rule evaluations that failed at run time (counted as false).",
		})),
		open: register(reg, &errs, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vmtriage_incidents",
			Help: "Open incidents held by the rule engine, by status.",
		}, []string{"status"})),
		transitions: register(reg, &errs, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_incident_transitions_total",
			Help: "Incident lifecycle transitions, by the status entered (pending, firing, resolved, reopened, withdrawn: pending and cleared before it fired).",
		}, []string{"status"})),
		reloads: register(reg, &errs, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_rule_reloads_total",
			Help: "Rule reloads, by result (success, failure); a failed reload keeps the old rules.",
		}, []string{"result"})),
		escalations: register(reg, &errs, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_escalations_total",
			Help: "Escalation levels raised.",
		})),
		storeErrors: register(reg, &errs, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_rule_engine_store_errors_total",
			Help: "Store calls of the rule engine that failed (retried later).",
		})),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register rule engine metrics: %w", err)
	}
	for i, s := range []string{"vm", "host", "service", "source"} {
		m.evals[i] = evals.WithLabelValues(s)
	}
	m.openPending = m.open.WithLabelValues(string(model.StatusPending))
	m.openFiring = m.open.WithLabelValues(string(model.StatusFiring))
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name (a second engine in one process, e.g. in tests, shares them).
func register[C prometheus.Collector](reg prometheus.Registerer, errs *[]error, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		*errs = append(*errs, err)
	}
	return c
}

func (m *metrics) setOpen(open map[*incState]struct{}) {
	var p, f int
	for st := range open {
		switch st.inc.Status {
		case model.StatusPending:
			p++
		case model.StatusFiring:
			f++
		}
	}
	m.openPending.Set(float64(p))
	m.openFiring.Set(float64(f))
}

// flushMetrics moves the evaluation counts gathered during an operation to
// the counters: one atomic add per scope per operation.
func (e *Engine) flushMetrics() {
	for i, n := range e.evals {
		if n > 0 {
			e.m.evals[i].Add(float64(n))
			e.evals[i] = 0
		}
	}
	if e.errs > 0 {
		e.m.evalErrors.Add(float64(e.errs))
		e.errs = 0
	}
}
