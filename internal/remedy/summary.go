package remedy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// incidentStore is what SyncIncident needs.
type incidentStore interface {
	Incident(ctx context.Context, id string) (model.Incident, error)
	SaveIncident(ctx context.Context, inc *model.Incident) error
}

// ApprovalOf maps a remedy's state onto the incident's Approval field.
func ApprovalOf(r model.Remedy) model.Approval {
	switch r.State {
	case model.RemedyAwaiting:
		return model.ApprovalPending
	case model.RemedyDenied:
		return model.ApprovalDenied
	case model.RemedyExpired:
		return model.ApprovalExpired
	}
	if r.ApprovalsNeeded == 0 {
		return model.ApprovalNotRequired
	}
	return model.ApprovalApproved
}

// SyncIncident writes the remedy's state onto its incident (Approval and
// the one-line Remedy summary), so that the incident's message and thread
// show it. It retries version conflicts a few times; a failure is logged,
// never returned: the remedy record and its audit trail are the truth, the
// incident only shows them.
func SyncIncident(ctx context.Context, st incidentStore, r model.Remedy, log *slog.Logger) {
	for attempt := 0; attempt < 5; attempt++ {
		inc, err := st.Incident(ctx, r.Incident)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			log.Warn("show remedy on its incident", "remedy", r.ID, "incident", r.Incident, "err", err)
			return
		}
		approval, summary := ApprovalOf(r), Summary(r)
		if inc.Approval == approval && inc.Remedy == summary {
			return
		}
		inc.Approval, inc.Remedy = approval, summary
		err = st.SaveIncident(ctx, &inc)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			log.Warn("show remedy on its incident", "remedy", r.ID, "incident", r.Incident, "err", err)
		}
		return
	}
	log.Warn("show remedy on its incident: it kept changing", "remedy", r.ID, "incident", r.Incident)
}

// maxPlanItems is how many moves a summary lists before "and N more".
const maxPlanItems = 6

// Summary is the remedy in one line, for the incident's message and
// thread: "rem-3 awaiting approval (0 of 2) until 10:30 UTC — plan: vm-1 →
// host-2, vm-3 → host-4; vm-9 fits nowhere".
func Summary(r model.Remedy) string {
	var b strings.Builder
	b.WriteString(r.ID + " ")
	switch r.State {
	case model.RemedyAwaiting:
		fmt.Fprintf(&b, "awaiting approval (%d of %d) until %s", len(r.Approvals), r.ApprovalsNeeded, r.ExpiresAt.UTC().Format("15:04 MST"))
		if r.Action == model.ActionMigrateHost {
			b.WriteString(" — plan: " + PlanText(r.Steps))
		}
	case model.RemedyApproved:
		if r.ApprovalsNeeded == 0 {
			b.WriteString("queued (runs without approval)")
		} else {
			b.WriteString("approved by " + approvers(r) + "; queued")
		}
	case model.RemedyDenied:
		if r.Denial != nil {
			b.WriteString("denied by " + r.Denial.User + ": " + r.Denial.Reason)
		} else {
			b.WriteString("denied")
		}
	case model.RemedyExpired:
		if r.Result != "" {
			b.WriteString(r.Result)
		} else {
			b.WriteString("expired without approval; nothing was done")
		}
	case model.RemedyRunning:
		done, total := 0, 0
		for _, s := range r.Steps {
			total++
			if s.State != model.StepPending && s.State != model.StepStarted {
				done++
			}
		}
		fmt.Fprintf(&b, "running: %d of %d steps finished", done, total)
	case model.RemedyDone, model.RemedyFailed:
		b.WriteString(string(r.State) + ": " + r.Result)
	default:
		b.WriteString(string(r.State))
	}
	return b.String()
}

func approvers(r model.Remedy) string {
	names := make([]string, len(r.Approvals))
	for i, a := range r.Approvals {
		names[i] = a.User
	}
	return strings.Join(names, ", ")
}

// PlanText lists a migration plan's moves and the VMs that fit nowhere:
// "vm-1 → host-2, vm-3 → host-4; fits nowhere: vm-9".
func PlanText(steps []model.RemedyStep) string {
	var moves, nowhere []string
	for _, s := range steps {
		if s.Do != model.StepMigrateVM {
			continue
		}
		if s.Target == "" {
			nowhere = append(nowhere, s.VM)
			continue
		}
		moves = append(moves, s.VM+" → "+s.Target)
	}
	text := "nothing to move"
	if len(moves) > 0 {
		text = shortList(moves)
	}
	if len(nowhere) > 0 {
		text += "; fits nowhere: " + shortList(nowhere)
	}
	return text
}

func shortList(items []string) string {
	if len(items) <= maxPlanItems {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:maxPlanItems], ", ") + fmt.Sprintf(" and %d more", len(items)-maxPlanItems)
}

// Outcome counts a finished remedy's steps in words: "3 moved, 1 failed,
// 1 skipped (vm-9: fits nowhere ...)".
func Outcome(r model.Remedy) (text string, failed bool) {
	var ok, bad, skipped int
	var notes []string
	for _, s := range r.Steps {
		if s.Do == model.StepHostMaintenance && s.State == model.StepDone {
			continue // counted as a step, not as a VM moved
		}
		switch s.State {
		case model.StepDone:
			ok++
		case model.StepFailed:
			bad++
			notes = append(notes, stepName(s)+": "+s.Detail)
		case model.StepSkipped:
			skipped++
			notes = append(notes, stepName(s)+": "+s.Detail)
		}
	}
	verb := "done"
	if r.Action == model.ActionMigrateHost {
		verb = "moved"
	}
	parts := []string{fmt.Sprintf("%d %s", ok, verb)}
	if bad > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", bad))
	}
	if skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", skipped))
	}
	text = strings.Join(parts, ", ")
	if len(notes) > 0 {
		text += " (" + shortList(notes) + ")"
	}
	return text, bad > 0
}

func stepName(s model.RemedyStep) string {
	switch {
	case s.VM != "":
		return s.VM
	case s.Service != "":
		return s.Host + "/" + s.Service
	}
	return s.Host
}
