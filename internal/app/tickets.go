package app

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/tickets"
)

// newTickets builds the Jira ticket worker when VMTRIAGE_JIRA_URL is set,
// or returns nil. It consumes the incidents stream in its own group, so it
// sees every incident change whatever Slack does.
//
// owner gives the Jira component and assignee of the team owning the
// services an incident hits (the inventory's), over the cause's.
func newTickets(cfg config.Config, st *store.Store, replica string, owner func(*model.Incident) (string, string),
	clk clock.Clock, log *slog.Logger, reg prometheus.Registerer) (*tickets.Tickets, error) {
	if cfg.JiraURL == "" {
		return nil, nil
	}
	sevs := make([]model.Severity, 0, len(cfg.JiraSeverities))
	for _, s := range cfg.JiraSeverities {
		sevs = append(sevs, model.Severity(s))
	}
	prios := make(map[model.Severity]string, len(cfg.JiraPriorities))
	for s, p := range cfg.JiraPriorities {
		prios[model.Severity(s)] = p
	}
	tk, err := tickets.New(tickets.Options{
		BaseURL: cfg.JiraURL, User: cfg.JiraUser, Token: cfg.JiraToken, Flavor: tickets.Flavor(cfg.JiraFlavor),
		Project: cfg.JiraProject, IssueType: cfg.JiraIssueType, Severities: sevs, Priorities: prios,
		Components: cfg.JiraComponents, Assignees: cfg.JiraAssignees, Owner: owner,
		ResolveTransitions: cfg.JiraResolveTransitions, ReopenTransitions: cfg.JiraReopenTransitions,
		ReopenWindow: cfg.JiraReopenWindow,
		Store:        st, Hosts: st, Fixes: ticketFixes{st}, Notes: st, Consumer: replica,
		Clock: clk, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start jira tickets: %w", err)
	}
	return tk, nil
}
