package rules

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// t0 is five seconds into a collection period.
var t0 = time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)

// harness drives an engine over a fake store and a fake clock.
type harness struct {
	t     *testing.T
	ctx   context.Context
	clk   *clock.Fake
	store *fakeStore
	e     *Engine
}

func newHarness(t *testing.T, set *Set) *harness {
	t.Helper()
	if set == nil {
		var err error
		set, err = Default()
		if err != nil {
			t.Fatalf("Default: %v", err)
		}
	}
	clk := clock.NewFake(t0)
	st := newFakeStore(clk.Now)
	e, err := NewEngine(context.Background(), Options{Rules: set, Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return &harness{t: t, ctx: context.Background(), clk: clk, store: st, e: e}
}

func (h *harness) observe(obs ...model.Observation) {
	h.t.Helper()
	if err := h.e.Observe(h.ctx, obs); err != nil {
		h.t.Fatalf("Observe: %v", err)
	}
}

func (h *harness) tick() {
	h.t.Helper()
	if err := h.e.Tick(h.ctx); err != nil {
		h.t.Fatalf("Tick: %v", err)
	}
}

// advance moves the clock and ticks.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clk.Advance(d)
	h.tick()
}

// incidents returns the stored incidents of a rule.
func (h *harness) incidents(rule string) []model.Incident {
	var out []model.Incident
	for _, inc := range h.store.all() {
		if inc.Rule == rule {
			out = append(out, inc)
		}
	}
	return out
}

// one returns the single stored incident of a rule, failing otherwise.
func (h *harness) one(rule string) model.Incident {
	h.t.Helper()
	incs := h.incidents(rule)
	if len(incs) != 1 {
		h.t.Fatalf("want 1 incident of %s, got %d: %+v", rule, len(incs), incs)
	}
	return incs[0]
}

func (h *harness) none(rules ...string) {
	h.t.Helper()
	for _, r := range rules {
		if incs := h.incidents(r); len(incs) > 0 {
			h.t.Errorf("want no incident of %s, got %+v", r, incs)
		}
	}
}

func (h *harness) openRules() []string {
	var out []string
	for _, inc := range h.store.all() {
		if inc.Open() {
			out = append(out, inc.Rule)
		}
	}
	slices.Sort(out)
	return out
}

func (h *harness) vm(id, host string, state model.State, attrs map[string]any) model.Observation {
	return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: host, Site: "pod-a", State: state, Attrs: attrs, TimeGenerated: h.clk.Now()}
}

func (h *harness) azure(id string, state model.State, event string) model.Observation {
	return model.Observation{Source: "azure", Kind: model.KindVM, ID: id, Site: "westeurope", State: state, Event: event, TimeGenerated: h.clk.Now()}
}

func (h *harness) host(id string, attrs map[string]any) model.Observation {
	return model.Observation{Source: "prometheus", Kind: model.KindHost, ID: id, Site: "pod-a", Attrs: attrs, TimeGenerated: h.clk.Now()}
}

func (h *harness) service(host, name string, state model.State) model.Observation {
	return model.Observation{Source: "prometheus", Kind: model.KindService, ID: name, Host: host, Site: "pod-a", State: state, TimeGenerated: h.clk.Now()}
}

// healthy are the facts of a host with nothing wrong.
func healthy() map[string]any {
	return map[string]any{"ecc_uncorrected": 0.0, "mce": 0.0, "nic_up": true, "psu_ok": true, "temp_c": 45.0, "storage_reachable": true, "network_reachable": true}
}

func facts(kv ...any) map[string]any {
	m := healthy()
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// want is what a test expects of an incident.
type want struct {
	status           model.Status
	cause            string
	severity         model.Severity
	trigger          model.Trigger
	action           model.Action
	approval         model.Approval
	kind             model.Kind
	subject          string
	vms              []string
	platformRecovery bool
}

func (h *harness) check(inc model.Incident, w want) {
	h.t.Helper()
	if w.status != "" && inc.Status != w.status {
		h.t.Errorf("%s: status %s, want %s", inc.Rule, inc.Status, w.status)
	}
	if w.cause != "" && inc.Cause != w.cause {
		h.t.Errorf("%s: cause %s, want %s", inc.Rule, inc.Cause, w.cause)
	}
	if w.severity != "" && inc.Severity != w.severity {
		h.t.Errorf("%s: severity %s, want %s", inc.Rule, inc.Severity, w.severity)
	}
	if w.trigger != "" && inc.Trigger != w.trigger {
		h.t.Errorf("%s: trigger %s, want %s", inc.Rule, inc.Trigger, w.trigger)
	}
	if w.action != "" && inc.Action != w.action {
		h.t.Errorf("%s: action %s, want %s", inc.Rule, inc.Action, w.action)
	}
	if w.approval != "" && inc.Approval != w.approval {
		h.t.Errorf("%s: approval %s, want %s", inc.Rule, inc.Approval, w.approval)
	}
	if w.kind != "" && inc.Kind != w.kind {
		h.t.Errorf("%s: kind %s, want %s", inc.Rule, inc.Kind, w.kind)
	}
	if w.subject != "" && inc.Subject != w.subject {
		h.t.Errorf("%s: subject %s, want %s", inc.Rule, inc.Subject, w.subject)
	}
	if w.vms != nil && !slices.Equal(inc.VMs, w.vms) {
		h.t.Errorf("%s: vms %v, want %v", inc.Rule, inc.VMs, w.vms)
	}
	if inc.PlatformRecovery != w.platformRecovery {
		h.t.Errorf("%s: platform_recovery %v, want %v", inc.Rule, inc.PlatformRecovery, w.platformRecovery)
	}
	if inc.Summary == "" {
		h.t.Errorf("%s: empty summary", inc.Rule)
	}
}
