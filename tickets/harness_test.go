package tickets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

const (
	testUser  = "ops-bot@example.com"
	testToken = "ATATT3xFfGF0-very-secret-token-4711"
)

// harness is one fake Jira, one isolated store and Tickets on both, with a
// fake clock that Sleep advances instead of waiting.
type harness struct {
	t    testing.TB
	ctx  context.Context
	st   *store.Store
	jira *jiratest.Server
	clk  *clock.Fake
	tk   *Tickets
	logs *bottest.Recorder
	log  *slog.Logger

	reg *prometheus.Registry

	mu     sync.Mutex
	sleeps []time.Duration
}

type setup struct {
	server bool
	jira   func(*jiratest.Options)
	opts   func(*Options)
}

func newHarness(t testing.TB, s setup) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), clk: clock.NewFake(bottest.Now), reg: prometheus.NewRegistry()}
	h.log, h.logs = bottest.Logger()
	jo := jiratest.Options{Cloud: !s.server, User: testUser, Token: testToken,
		Components: []string{"Compute", "Storage"}, Assignees: []string{"acc-42", "jdoe"}, Clock: h.clk}
	if s.server {
		jo.User = ""
	}
	if s.jira != nil {
		s.jira(&jo)
	}
	h.jira = jiratest.NewServer(jo)
	t.Cleanup(h.jira.Close)
	h.st = storetest.New(t, store.Options{Clock: h.clk})
	h.tk = h.newTickets("w1", s)
	return h
}

// newTickets returns another Tickets on the same store and Jira (another
// replica).
func (h *harness) newTickets(consumer string, s setup) *Tickets {
	h.t.Helper()
	o := Options{
		BaseURL: h.jira.URL, User: testUser, Token: config.Secret(testToken), Project: "OPS",
		Components: map[string]string{"host-hardware-fault": "Compute", "storage-unreachable": "Storage"},
		Assignees:  map[string]string{"host-hardware-fault": "acc-42"},
		Store:      h.st, Consumer: consumer, Block: time.Millisecond, Batch: 10,
		ClaimIdle: time.Hour, Clock: h.clk, Logger: h.log.With("replica", consumer),
		Sleep: h.sleep, Registerer: h.reg,
	}
	if s.server {
		o.User, o.Assignees = "", map[string]string{"host-hardware-fault": "jdoe"}
	}
	if s.opts != nil {
		s.opts(&o)
	}
	tk, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	return tk
}

func (h *harness) sleep(ctx context.Context, d time.Duration) error {
	h.mu.Lock()
	h.sleeps = append(h.sleeps, d)
	h.mu.Unlock()
	h.clk.Advance(d)
	return ctx.Err()
}

func (h *harness) slept() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

// open saves a new firing incident.
func (h *harness) open(id string, sev model.Severity, mod ...func(*model.Incident)) model.Incident {
	h.t.Helper()
	inc := model.Incident{
		ID: id, Fingerprint: "fp-" + id, Rule: "vm-crash-on-failing-host", Status: model.StatusFiring,
		Severity: sev, Cause: "host-hardware-fault", Trigger: model.TriggerPlatform,
		Action: model.ActionMigrateHost, Approval: model.ApprovalPending,
		Kind: model.KindHost, Subject: "host-007", Host: "host-007", Site: "pod-a",
		VMs: []string{"vm-0040", "vm-0041"}, HostState: "failed",
		StartedAt: h.clk.Now().Add(-2 * time.Minute), FiringAt: h.clk.Now().Add(-time.Minute), Level: 1,
		Runbooks: []string{"https://kb.example/runbooks/host-hardware-fault"},
	}
	for _, m := range mod {
		m(&inc)
	}
	if err := h.st.SaveIncident(h.ctx, &inc); err != nil {
		h.t.Fatal(err)
	}
	return inc
}

// change loads, modifies and saves an incident, as the rules engine or the
// bot would.
func (h *harness) change(id string, m func(*model.Incident)) model.Incident {
	h.t.Helper()
	inc, err := h.st.Incident(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	m(&inc)
	if err := h.st.SaveIncident(h.ctx, &inc); err != nil {
		h.t.Fatal(err)
	}
	return inc
}

func (h *harness) incident(id string) model.Incident {
	h.t.Helper()
	inc, err := h.st.Incident(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return inc
}

// drain runs the follower and the worker of tks until both streams stay
// empty.
func (h *harness) drain(tks ...*Tickets) {
	h.t.Helper()
	if len(tks) == 0 {
		tks = []*Tickets{h.tk}
	}
	quiet := 0
	for range 200 {
		before := len(h.jira.Requests())
		for _, tk := range tks {
			if err := tk.FollowStep(h.ctx); err != nil {
				h.t.Fatal(err)
			}
			if err := tk.WorkStep(h.ctx); err != nil {
				h.t.Fatal(err)
			}
		}
		n, err := h.st.TicketBacklog(h.ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 && len(h.jira.Requests()) == before {
			if quiet++; quiet == 2 {
				return
			}
		} else {
			quiet = 0
		}
	}
	h.t.Fatal("the ticket streams did not drain")
}

// only returns the one issue Jira has, failing otherwise.
func (h *harness) only() jiratest.Issue {
	h.t.Helper()
	is := h.jira.Issues()
	if len(is) != 1 {
		h.t.Fatalf("Jira has %d issues; want 1: %+v", len(is), is)
	}
	return is[0]
}

// assertNoSecrets checks logs, the given errors and every ticket text.
func (h *harness) assertNoSecrets(errs ...error) {
	h.t.Helper()
	out := map[string]string{"logs": h.logs.String()}
	for i, err := range errs {
		if err != nil {
			out[fmt.Sprintf("error %d", i)] = err.Error()
		}
	}
	for _, is := range h.jira.Issues() {
		out[is.Key] = fmt.Sprint(is)
	}
	for _, id := range []string{"inc-1", "inc-2"} {
		if rec, err := h.st.TicketRecord(h.ctx, id); err == nil {
			out["record "+id] = rec.Error
		} else if !errors.Is(err, store.ErrNotFound) {
			h.t.Fatal(err)
		}
	}
	bottest.AssertNoSecrets(h.t, []string{testToken}, out)
}

// counter reads a counter's value.
func (h *harness) counter(c prometheus.Counter) float64 {
	h.t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		h.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
