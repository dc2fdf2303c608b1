package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/inventory"
	"github.com/vmtriage/vmtriage/rules"
)

// newInventory builds the inventory of relations (VM → service → team →
// contacts): the file VMTRIAGE_INVENTORY_PATH, loaded now and whenever it
// changes, and pushes to POST /v1/inventory with VMTRIAGE_INVENTORY_TOKEN.
// A bad file stops start-up, naming its line and field.
func newInventory(ctx context.Context, cfg config.Config, st *store.Store, clk clock.Clock, log *slog.Logger) (*inventory.Manager, error) {
	m, err := inventory.New(ctx, inventory.Options{
		Store: st, Path: cfg.InventoryPath, Token: cfg.InventoryToken, MaxBody: cfg.MaxBody,
		Clock: clk, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("VMTRIAGE_INVENTORY_PATH: %w", err)
	}
	return m, nil
}

// impactAsker answers "what if it went down now".
type impactAsker interface {
	ImpactOf(ctx context.Context, name string) (inventory.TargetKind, inventory.Report, error)
}

// impactVerb is `/triage impact <host|site|vm>`: the services, instances
// and teams that would be hit if it went down now, so an operator can judge
// a maintenance before doing it.
func impactVerb(m impactAsker) bot.Verb {
	return bot.Verb{
		Name: "impact", Args: "<host|site|vm>", Help: "services, instances and teams hit if it went down now",
		Example: "impact host-007", MinArgs: 1, MaxArgs: 1,
		Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
			name := cmd.Args[0]
			kind, rep, err := m.ImpactOf(ctx, name)
			if errors.Is(err, inventory.ErrUnknownTarget) {
				return bot.Reply{}, bot.Userf("%s is no host, site or VM that vmtriage knows", name)
			}
			if err != nil {
				return bot.Reply{}, err
			}
			return impactReply(kind, name, rep), nil
		},
	}
}

// impactReply words an impact report for people.
func impactReply(kind inventory.TargetKind, name string, rep inventory.Report) bot.Reply {
	r := bot.Reply{Title: fmt.Sprintf("If %s %s went down now: %s, %s, %s", kind, name,
		count(rep.VMs, "running VM"), count(len(rep.Services), "service"), count(len(rep.Teams), "team"))}
	if rep.VMs == 0 {
		r.Sections = append(r.Sections, bot.Section{Lines: []string{"Nothing running there would go down."}})
		return r
	}
	if len(rep.Services) > 0 {
		list := &bot.List{}
		for _, s := range rep.Services {
			item := s.String()
			if s.Team != "" {
				item += " — " + s.Team
			} else {
				item += " — no owning team"
			}
			list.Items = append(list.Items, item)
		}
		r.Sections = append(r.Sections, bot.Section{Heading: "Services hit", List: list})
	}
	if len(rep.Teams) > 0 {
		sec := bot.Section{Heading: "Who to tell"}
		for _, t := range rep.Teams {
			sec.Fields = append(sec.Fields, bot.Field{Key: t.Team.Name, Value: contacts(t.Team) + " — " + strings.Join(t.Services, ", ")})
		}
		r.Sections = append(r.Sections, sec)
	}
	if len(rep.Unowned) > 0 {
		r.Sections = append(r.Sections, bot.Section{
			Heading: fmt.Sprintf("Not in the inventory: %s", count(len(rep.Unowned), "VM")),
			List:    &bot.List{Items: rep.Unowned},
		})
	}
	if rep.LastInSite() || rep.MaxFractionDown() >= 1 {
		r.Tone = bot.ToneWarning
	}
	return r
}

// contacts lists where to reach a team.
func contacts(t inventory.Team) string {
	var parts []string
	if t.SlackChannel != "" {
		parts = append(parts, "Slack "+t.SlackChannel)
	}
	if t.SlackUsergroup != "" {
		parts = append(parts, "group "+t.SlackUsergroup)
	}
	if t.JiraComponent != "" {
		parts = append(parts, "Jira "+t.JiraComponent)
	}
	if t.JiraAssignee != "" {
		parts = append(parts, "assignee "+t.JiraAssignee)
	}
	if len(parts) == 0 {
		return "no contacts in the inventory"
	}
	return strings.Join(parts, ", ")
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// inventoryReader gives the merged inventory in force.
type inventoryReader interface {
	Inventory() *inventory.Inventory
}

// ownerVerb is `/triage owner <vm|service>`: who owns it and where to
// reach them.
func ownerVerb(m inventoryReader) bot.Verb {
	return bot.Verb{
		Name: "owner", Args: "<vm|service>", Help: "who owns a VM or service and where to reach them",
		Example: "owner payments-api", MinArgs: 1, MaxArgs: 1,
		Run: func(_ context.Context, cmd bot.Command) (bot.Reply, error) {
			inv := m.Inventory()
			name := cmd.Args[0]
			svc, isVM := inv.ServiceOf(name)
			if !isVM {
				svc = name
			}
			team, instances := inv.TeamOf(svc), len(inv.Instances(svc))
			if !isVM && team == "" && instances == 0 {
				return bot.Reply{}, bot.Userf("%s is no VM or service in the inventory", name)
			}
			r := bot.Reply{}
			switch {
			case isVM && team != "":
				r.Title = fmt.Sprintf("%s is an instance of %s, owned by %s", name, svc, team)
			case isVM:
				r.Title = fmt.Sprintf("%s is an instance of %s, which no team owns", name, svc)
			case team != "":
				r.Title = fmt.Sprintf("%s is owned by %s", svc, team)
			default:
				r.Title = fmt.Sprintf("%s is owned by no team", svc)
			}
			sec := bot.Section{Fields: []bot.Field{{Key: "Service", Value: fmt.Sprintf("%s (%s)", svc, count(instances, "instance"))}}}
			if team != "" {
				t := inv.Team(team)
				for _, f := range []bot.Field{
					{Key: "Team", Value: team}, {Key: "Slack channel", Value: t.SlackChannel}, {Key: "User group", Value: t.SlackUsergroup},
					{Key: "Jira component", Value: t.JiraComponent}, {Key: "Jira assignee", Value: t.JiraAssignee},
				} {
					if f.Value != "" {
						sec.Fields = append(sec.Fields, f)
					}
				}
			} else {
				r.Tone = bot.ToneWarning
				sec.Lines = []string{"Add the service's team to the inventory (file or POST /v1/inventory)."}
			}
			r.Sections = []bot.Section{sec}
			return r, nil
		},
	}
}

// impactSource is what rules' impact.* reads from the inventory.
type impactSource interface {
	VMImpact(vm, site string, down bool) (float64, bool, int)
	HostImpact(host, site string) (float64, bool, int)
}

// ruleImpact adapts the inventory to the rules engine's Impact hook, so
// neither package imports the other.
func ruleImpact(m impactSource) func(rules.ImpactQuery, *rules.ImpactEnv) {
	return func(q rules.ImpactQuery, out *rules.ImpactEnv) {
		if q.VM != "" {
			out.MaxFractionDown, out.LastInSite, out.Services = m.VMImpact(q.VM, q.Site, q.Down)
			return
		}
		out.MaxFractionDown, out.LastInSite, out.Services = m.HostImpact(q.Host, q.Site)
	}
}
