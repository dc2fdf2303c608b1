package tickets

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count what the ticket worker does, so a Jira outage or a
// refusing configuration shows on a dashboard before anyone asks.
type metrics struct {
	created   prometheus.Counter
	reused    prometheus.Counter
	attempts  *prometheus.CounterVec
	done      prometheus.Counter
	retried   prometheus.Counter
	refused   prometheus.Counter
	busy      prometheus.Counter
	dropped   prometheus.Counter
	queuedOps prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var errs []error
	attempts := register(reg, &errs, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmtriage_ticket_attempts_total",
		Help: "Attempts at bringing an incident's ticket up to date, by outcome: done, retry (Jira slow or down: 429, 5xx, timeout), refused (a 4xx: not retried, see the logs), busy (another worker held the incident), dropped (the incident is gone).",
	}, []string{"outcome"}))
	m := &metrics{
		created: register(reg, &errs, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_tickets_created_total",
			Help: "Jira tickets created.",
		})),
		reused: register(reg, &errs, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_tickets_reused_total",
			Help: "Recurrences that reused (and reopened if need be) an earlier occurrence's ticket.",
		})),
		queuedOps: register(reg, &errs, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_ticket_operations_queued_total",
			Help: "Ticket operations queued on the ticket stream.",
		})),
		attempts: attempts,
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register ticket metrics: %w", err)
	}
	m.done = attempts.WithLabelValues("done")
	m.retried = attempts.WithLabelValues("retry")
	m.refused = attempts.WithLabelValues("refused")
	m.busy = attempts.WithLabelValues("busy")
	m.dropped = attempts.WithLabelValues("dropped")
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name (two Tickets in one process, as in tests, share them).
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
