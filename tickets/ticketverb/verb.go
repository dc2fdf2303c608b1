// Package ticketverb is the "/triage ticket <incident>" command: it asks
// tickets to open the incident's Jira ticket now and answers with its link.
// It sits between bot and tickets so that neither imports the other.
package ticketverb

import (
	"context"
	"errors"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/tickets"
)

// Creator opens an incident's ticket on demand; *tickets.Tickets
// implements it.
type Creator interface {
	CreateNow(ctx context.Context, incidentID string) (key, url string, err error)
}

var _ Creator = (*tickets.Tickets)(nil)

// Verb returns the "ticket" verb for bot.Router.Register. Operators (the
// ack group) may run it: a ticket is harmless, but it pages whoever
// watches the Jira project.
func Verb(c Creator) bot.Verb {
	return bot.Verb{
		Name:    "ticket",
		Args:    "<incident>",
		Help:    "open the incident's Jira ticket now (critical and high incidents get one automatically)",
		Example: "ticket inc-42",
		Group:   bot.GroupAck,
		MinArgs: 1, MaxArgs: 1,
		Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
			return run(ctx, c, cmd.Args[0])
		},
	}
}

func run(ctx context.Context, c Creator, id string) (bot.Reply, error) {
	key, url, err := c.CreateNow(ctx, id)
	var ae *tickets.APIError
	switch {
	case errors.Is(err, tickets.ErrNotFound):
		return bot.Reply{}, &bot.UserError{Msg: "There is no incident " + id + ".", Hint: bot.Prefix + " incidents lists the open ones"}
	case errors.Is(err, tickets.ErrQueued):
		return bot.Reply{
			Title: "Jira does not answer right now; the ticket for " + id + " is queued and will be opened as soon as it does.",
			Tone:  bot.ToneWarning, Visibility: bot.InChannel,
		}, nil
	case key == "" && errors.As(err, &ae):
		return bot.Reply{}, &bot.UserError{Msg: "Jira refused the ticket for " + id + ": " + joinMessages(ae), Hint: ae.Hint}
	case key == "" && err != nil:
		return bot.Reply{}, err
	}
	reply := bot.Reply{
		Title:      "Ticket " + key + " follows incident " + id + ".",
		Tone:       bot.ToneOK,
		Visibility: bot.InChannel,
		Sections:   []bot.Section{{Fields: []bot.Field{{Key: "Ticket", Value: key}, {Key: "Link", Value: url}}}},
		Actions:    []bot.Action{{Label: "Open " + key, URL: url}},
	}
	if err != nil {
		// The ticket exists but a later update was refused.
		reply.Tone = bot.ToneWarning
		reply.Sections = append(reply.Sections, bot.Section{Lines: []string{"Jira refused an update: " + err.Error()}})
	}
	return reply, nil
}

func joinMessages(ae *tickets.APIError) string {
	if len(ae.Messages) == 0 {
		return "HTTP error"
	}
	out := ae.Messages[0]
	for _, m := range ae.Messages[1:] {
		out += "; " + m
	}
	return out
}
