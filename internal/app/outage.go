package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/outage"
	"github.com/vmtriage/vmtriage/internal/statuspage"
	"github.com/vmtriage/vmtriage/internal/store"
)

// outageParts are the outage books, their reports and the status page.
type outageParts struct {
	books    *outage.Books
	reporter *outage.Reporter
	routes   map[string]http.Handler
}

// newOutages builds the outage books (a consumer of the incidents stream in
// its own group), the availability report endpoints and the status page;
// services (inventoryServices(inv)) names each VM's service for the
// reports' downtime by service.
func newOutages(cfg config.Config, st *store.Store, replica string, services outage.Services, clk clock.Clock, log *slog.Logger) (outageParts, error) {
	books, err := outage.New(outage.Options{Store: st, Consumer: replica, Sweep: cfg.OutageSweep,
		Retention: cfg.OutageRetention, Clock: clk, Logger: log})
	if err != nil {
		return outageParts{}, err
	}
	rep := &outage.Reporter{Source: st, SLATarget: cfg.SLATarget, Services: services, Clock: clk}
	page, err := statuspage.New(statuspage.Options{Fleet: st, Reports: rep, Actions: st, Token: cfg.StatusToken, Clock: clk, Logger: log})
	if err != nil {
		return outageParts{}, err
	}
	routes := rep.Routes()
	for p, h := range page.Routes() {
		routes[p] = h
	}
	return outageParts{books: books, reporter: rep, routes: routes}, nil
}

// chartUploader uploads a file to a chat channel (bot/slack's Uploader).
type chartUploader interface {
	UploadFile(ctx context.Context, channel, filename, title string, data []byte) error
}

// reportPeriods are the periods /triage report accepts.
var reportPeriods = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// reportVerb is `/triage report [24h|7d|30d] [site]`: availability with
// downtime by attribution, the worst VMs, the platform's SLA breaches and
// ticket analytics; the chart of downtime per day is uploaded to the
// channel when up is set (Slack configured), and linked on the status page
// when publicURL is.
func reportVerb(rep *outage.Reporter, up chartUploader, publicURL string, log *slog.Logger) bot.Verb {
	return bot.Verb{
		Name: "report", Args: "[24h|7d|30d] [site]", Help: "availability and downtime by attribution, with a chart",
		Example: "report 7d pod-a", MaxArgs: 2,
		Check: func(args []string) error {
			if len(args) == 2 {
				if _, ok := reportPeriods[args[0]]; !ok {
					return bot.Userf("the period is 24h, 7d or 30d, not %q", args[0])
				}
			}
			return nil
		},
		Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
			period, site := "7d", ""
			for _, a := range cmd.Args {
				if _, ok := reportPeriods[a]; ok {
					period = a
				} else {
					site = a
				}
			}
			now := rep.Now()
			r, err := rep.Report(ctx, now.Add(-reportPeriods[period]), now, site)
			var pe *outage.ParamError
			if errors.As(err, &pe) {
				return bot.Reply{}, bot.Userf("no site is named %q; the period is 24h, 7d or 30d", site)
			}
			if err != nil {
				return bot.Reply{}, err
			}
			reply := reportReply(&r, period)
			if link := statusLink(publicURL, period, site); link != "" {
				reply.Actions = append(reply.Actions, bot.Action{Label: "Open the fault statistics", URL: link})
			}
			if up != nil && cmd.Channel != "" {
				if err := uploadChart(ctx, up, cmd.Channel, &r, period); err != nil {
					log.Warn("upload report chart", "channel", cmd.Channel, "err", err)
					reply.Sections = append(reply.Sections, bot.Section{Lines: []string{"The chart could not be uploaded to this channel."}})
				}
			}
			return reply, nil
		},
	}
}

// reportReply turns a report into the neutral reply.
func reportReply(r *outage.Report, period string) bot.Reply {
	scope := "the fleet"
	if r.Site != "" {
		scope = "site " + r.Site
	}
	f := &r.Fleet
	reply := bot.Reply{
		Title: fmt.Sprintf("Availability of %s over the last %s: %.3f%% (target %g%%)", scope, period, f.UptimePercent, r.SLATarget),
		Tone:  bot.ToneOK, Visibility: bot.InChannel,
	}
	if f.UptimePercent < r.SLATarget {
		reply.Tone = bot.ToneWarning
	}
	reply.Sections = append(reply.Sections, bot.Section{Fields: []bot.Field{
		{Key: "VMs", Value: fmt.Sprint(f.VMs)},
		{Key: "downtime", Value: fmt.Sprintf("%s min in %s (%d ongoing)", mins(f.DowntimeMinutes), nOf(f.Outages, "outage", "outages"), f.Open)},
		{Key: "MTTR", Value: fmt.Sprintf("%.1f min", f.MTTRMinutes)},
	}})
	by := bot.Section{Heading: "Downtime by attribution (minutes)"}
	for _, a := range outage.Attributions {
		by.Fields = append(by.Fields, bot.Field{Key: string(a), Value: mins(f.ByAttribution.Get(a))})
	}
	reply.Sections = append(reply.Sections, by)
	if len(r.WorstVMs) > 0 {
		l := &bot.List{Limit: 5}
		for _, v := range r.WorstVMs {
			l.Items = append(l.Items, fmt.Sprintf("%s (%s): %s min, %.3f%%", v.Name, v.Host, mins(v.DowntimeMinutes), v.UptimePercent))
		}
		reply.Sections = append(reply.Sections, bot.Section{Heading: "Worst VMs", List: l})
	}
	if len(r.WorstHosts) > 0 {
		l := &bot.List{Limit: 5}
		for _, h := range r.WorstHosts {
			l.Items = append(l.Items, fmt.Sprintf("%s: %s min over %s", h.Name, mins(h.DowntimeMinutes), nOf(h.VMs, "VM", "VMs")))
		}
		reply.Sections = append(reply.Sections, bot.Section{Heading: "Worst hosts", List: l})
	}
	if len(r.Services) > 0 {
		l := &bot.List{Limit: 5}
		for _, s := range r.Services {
			l.Items = append(l.Items, fmt.Sprintf("%s: %s min in %s over %s", s.Service, mins(s.DowntimeMinutes),
				nOf(s.Outages, "outage", "outages"), nOf(s.VMs, "VM", "VMs")))
		}
		reply.Sections = append(reply.Sections, bot.Section{Heading: "Services with the most downtime", List: l})
	}
	pb := bot.Section{Heading: fmt.Sprintf("Platform SLA breaches: %d of %d VMs under target", len(r.PlatformBreaches), len(r.Breaches))}
	if len(r.PlatformBreaches) > 0 {
		pb.List = &bot.List{}
		for _, b := range r.PlatformBreaches {
			pb.List.Items = append(pb.List.Items, fmt.Sprintf("%s: %.3f%% by the platform's downtime", b.VM, b.PlatformUptimePercent))
		}
	}
	reply.Sections = append(reply.Sections, pb)
	t := r.IncidentsTotal
	reply.Sections = append(reply.Sections, bot.Section{Heading: "Incidents and tickets", Fields: []bot.Field{
		{Key: "incidents", Value: fmt.Sprintf("%d (%d acknowledged, %d resolved, %d with a ticket)", t.Count, t.Acked, t.Resolved, t.Tickets)},
		{Key: "time to acknowledge", Value: fmt.Sprintf("%.1f min on average", t.MTTAMinutes)},
		{Key: "time to resolve", Value: fmt.Sprintf("%.1f min on average", t.MTTRMinutes)},
	}})
	return reply
}

// mins formats minutes: a tenth under 10, whole minutes above.
func mins(m float64) string {
	if m < 10 {
		return strconv.FormatFloat(m, 'f', 1, 64)
	}
	return strconv.FormatFloat(m, 'f', 0, 64)
}

func nOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func statusLink(publicURL, period, site string) string {
	if publicURL == "" {
		return ""
	}
	v := url.Values{"period": {period}}
	if site != "" {
		v.Set("site", site)
	}
	return strings.TrimRight(publicURL, "/") + "/faults?" + v.Encode()
}

func uploadChart(ctx context.Context, up chartUploader, channel string, r *outage.Report, period string) error {
	var buf bytes.Buffer
	if err := outage.WriteChart(&buf, r.Days); err != nil {
		return err
	}
	title := "Downtime by attribution per day, last " + period
	if r.Site != "" {
		title += ", site " + r.Site
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return up.UploadFile(ctx, channel, "downtime-"+period+".png", title, buf.Bytes())
}
