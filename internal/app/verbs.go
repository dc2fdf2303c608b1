package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/latency"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/knowledge"
)

// kbHits is how many runbooks `/triage kb` answers with.
const kbHits = 5

// kbVerb is `/triage kb <words>`: ranked runbook search.
func kbVerb(kb *knowledge.KB) bot.Verb {
	return bot.Verb{
		Name: "kb", Args: "<words>", Help: "search the runbooks", Example: "kb ecc memory",
		MinArgs: 1, MaxArgs: -1,
		Run: func(_ context.Context, cmd bot.Command) (bot.Reply, error) {
			q := strings.Join(cmd.Args, " ")
			hits := kb.Search(q, kbHits)
			if len(hits) == 0 {
				return bot.Reply{}, bot.Userf("no runbook matches %q; try fewer or other words", q)
			}
			r := bot.Reply{Title: fmt.Sprintf("Runbooks for %q", q)}
			for _, h := range hits {
				r.Sections = append(r.Sections, bot.Section{
					Heading: h.Runbook.Title,
					Lines:   []string{h.Excerpt, kb.Link(h.Runbook.Slug)},
				})
			}
			return r, nil
		},
	}
}

// noteStore is what `/triage resolve` needs of the store.
type noteStore interface {
	Incident(ctx context.Context, id string) (model.Incident, error)
	AddNote(ctx context.Context, n store.Note) error
}

// resolveVerb is `/triage resolve <incident> <what fixed it>`: it keeps the
// note with the incident's cause, shown as "how this was fixed before" on
// the next incident of that cause. The incident itself resolves when its
// condition clears, not by this command.
func resolveVerb(st noteStore) bot.Verb {
	return bot.Verb{
		Name: "resolve", Args: "<incident> <what fixed it>",
		Help:    "record what fixed an incident, for the next one of its kind",
		Example: `resolve inc-42 "replaced DIMM B2"`, Group: bot.GroupAck, MinArgs: 2, MaxArgs: -1,
		Check: func(args []string) error {
			if n := len([]rune(strings.Join(args[1:], " "))); n > store.MaxNoteLen {
				return bot.Userf("the note is %d characters long; keep it under %d", n, store.MaxNoteLen)
			}
			return nil
		},
		Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
			inc, err := st.Incident(ctx, cmd.Args[0])
			if errors.Is(err, store.ErrNotFound) {
				return bot.Reply{}, bot.Userf("there is no incident %s", cmd.Args[0])
			}
			if err != nil {
				return bot.Reply{}, err
			}
			text := strings.Join(cmd.Args[1:], " ")
			if err := st.AddNote(ctx, store.Note{Incident: inc.ID, Cause: inc.Cause, Text: text, Author: cmd.User}); err != nil {
				return bot.Reply{}, err
			}
			return bot.Reply{
				Title:      fmt.Sprintf("Noted on %s for the next %s incident", inc.ID, inc.Cause),
				Tone:       bot.ToneOK,
				Sections:   []bot.Section{{Lines: []string{text}}},
				Visibility: bot.InChannel,
			}, nil
		},
	}
}

// latencyVerb is `/triage latency [source]`: how late each source's
// observations arrive, and who stopped reporting.
func latencyVerb(t *latency.Tracker) bot.Verb {
	return bot.Verb{
		Name: "latency", Args: "[source]", Help: "ingestion latency per source (p50/p95/max) and who stopped reporting",
		Example: "latency azure", MaxArgs: 1,
		Run: func(_ context.Context, cmd bot.Command) (bot.Reply, error) {
			only := ""
			if len(cmd.Args) == 1 {
				only = cmd.Args[0]
			}
			rep := t.Report(only)
			r := bot.Reply{Title: "Ingestion latency over the last " + rep.Window}
			if len(rep.Sources) == 0 {
				if only != "" {
					return bot.Reply{}, bot.Userf("no observations from source %q in the last %s", only, rep.Window)
				}
				r.Sections = append(r.Sections, bot.Section{Lines: []string{"No observations in the window."}})
				return r, nil
			}
			sec := bot.Section{Heading: "Received − generated (p50 / p95 / max)"}
			for _, s := range rep.Sources {
				v := fmt.Sprintf("%s / %s / %s  (%d obs)", secs(s.Received.P50), secs(s.Received.P95), secs(s.Received.Max), s.Received.Count)
				if s.Stopped {
					v += " — stopped reporting " + s.SilentFor + " ago"
				}
				sec.Fields = append(sec.Fields, bot.Field{Key: s.Source, Value: v})
			}
			r.Sections = append(r.Sections, sec)
			if rep.StoppedTotal > 0 {
				list := &bot.List{}
				for _, s := range rep.Stopped {
					list.Items = append(list.Items, fmt.Sprintf("%s %s (%s), silent %s", s.Kind, s.ID, s.Source, s.SilentFor))
				}
				r.Sections = append(r.Sections, bot.Section{Heading: fmt.Sprintf("Stopped reporting: %d", rep.StoppedTotal), List: list})
				r.Tone = bot.ToneWarning
			}
			return r, nil
		},
	}
}

func secs(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0fms", s*1000)
	}
	return fmt.Sprintf("%.1fs", s)
}
