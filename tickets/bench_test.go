package tickets

import (
	"fmt"
	"testing"

	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
)

func BenchmarkRenderTicket(b *testing.B) {
	r, err := newRenderer("", "", DefaultMaxDescription)
	if err != nil {
		b.Fatal(err)
	}
	for _, vms := range []int{12, 1000} {
		b.Run(fmt.Sprintf("vms=%d", vms), func(b *testing.B) {
			inc := bottest.HostFault
			inc.VMs = nil
			for i := range vms {
				inc.VMs = append(inc.VMs, fmt.Sprintf("vm-%05d", i))
			}
			labels := []string{Label, FingerprintLabel(&inc), IncidentLabel(&inc)}
			b.ReportAllocs()
			for b.Loop() {
				d := ticketData(inc, nil, labels, bottest.Now)
				if _, err := r.Summary(d); err != nil {
					b.Fatal(err)
				}
				if _, err := r.Description(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyncUnchanged is the cost of an operation that finds the ticket
// up to date (a duplicate, or a change that needs no Jira call): lock,
// read incident and record, unlock, against the real Redis.
func BenchmarkSyncUnchanged(b *testing.B) {
	h := newHarness(b, setup{})
	h.open("inc-1", model.SeverityCritical)
	if _, _, err := h.tk.CreateNow(h.ctx, "inc-1"); err != nil {
		b.Fatal(err)
	}
	before := len(h.jira.Requests())
	op := TicketOp{Incident: "inc-1", Reason: "change"}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.tk.attempt(h.ctx, op); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(h.jira.Requests()); n != before {
		b.Fatalf("%d Jira calls for unchanged incidents", n-before)
	}
}

// BenchmarkCreateTicket is one ticket created end to end: lock, lookup by
// JQL, render, create, record, store on the incident, against the fake
// Jira and the real Redis.
func BenchmarkCreateTicket(b *testing.B) {
	h := newHarness(b, setup{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("inc-%d", i)
		h.open(id, model.SeverityCritical)
		if _, _, err := h.tk.CreateNow(h.ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
