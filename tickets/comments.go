package tickets

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// changes lists the steps that bring a ticket showing prev up to cur, in
// the order they happened: a reopening first, a resolution last. Each step
// is one Jira change (a comment, or a transition), and step ids depend
// only on the change itself, so a retry recognises steps already done
// even if the incident changed again meanwhile.
func changes(prev, cur *model.Incident) []step {
	var out []step
	yes, no := true, false
	base := *prev
	reopened := cur.Reopened > prev.Reopened || (prev.Status == model.StatusResolved && cur.Open())
	if reopened {
		n := strconv.Itoa(cur.Reopened)
		out = append(out,
			step{id: "reopen-move-" + n, move: &no},
			step{id: "reopen-" + n, comment: fmt.Sprintf("The incident came back at %s UTC and was reopened (%s).",
				formatDate(cur.UpdatedAt), times(cur.Reopened))})
		// The rules engine starts a reopened incident over: escalation,
		// acknowledgement and approval are new.
		base.Level, base.AckedBy, base.AckedAt, base.Approval = 0, "", time.Time{}, ""
	}
	if added := newVMs(prev.VMs, cur.VMs); len(added) > 0 {
		shown := added
		if len(shown) > 20 {
			shown = shown[:20]
		}
		more := ""
		if len(added) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(added)-len(shown))
		}
		out = append(out, step{
			id: "vms-" + strconv.Itoa(len(cur.VMs)),
			comment: fmt.Sprintf("%d more VM(s) affected, %d in all: %s%s.",
				len(added), len(cur.VMs), escapeList(shown), more),
		})
	}
	if cur.Level > base.Level {
		c := fmt.Sprintf("Escalated to level %d.", cur.Level)
		if len(cur.Targets) > 0 {
			c = fmt.Sprintf("Escalated to level %d: %s told.", cur.Level, escapeList(cur.Targets))
		}
		out = append(out, step{id: "level-" + strconv.Itoa(cur.Level), comment: c})
	}
	if cur.AckedBy != "" && (cur.AckedBy != base.AckedBy || !cur.AckedAt.Equal(base.AckedAt)) {
		out = append(out, step{
			id:      "ack-" + strconv.FormatInt(cur.AckedAt.UnixMilli(), 10),
			comment: fmt.Sprintf("Acknowledged by %s at %s UTC.", escapeWiki(cur.AckedBy), formatDate(cur.AckedAt)),
		})
	}
	if cur.Approval != base.Approval && cur.Approval != "" && cur.Approval != model.ApprovalNotRequired {
		action := escapeWiki(string(cur.Action))
		var c string
		switch cur.Approval {
		case model.ApprovalPending:
			c = fmt.Sprintf("The proposed action *%s* awaits approval in chat.", action)
		case model.ApprovalApproved:
			c = fmt.Sprintf("The proposed action *%s* was approved; vmtriage runs it and reports the result here.", action)
		case model.ApprovalDenied:
			c = fmt.Sprintf("The proposed action *%s* was denied: it will not run.", action)
		case model.ApprovalExpired:
			c = fmt.Sprintf("The approval for *%s* expired without an answer: it will not run.", action)
		default:
			c = fmt.Sprintf("Approval of *%s*: %s.", action, escapeWiki(string(cur.Approval)))
		}
		out = append(out, step{id: "approval-" + string(cur.Approval) + "-" + strconv.Itoa(cur.Reopened), comment: c})
	}
	if cur.Status == model.StatusResolved && prev.Status != model.StatusResolved {
		c := fmt.Sprintf("Resolved at %s UTC. Outage duration: *%s* (from %s UTC).",
			formatDate(cur.ResolvedAt), roughDuration(cur.ResolvedAt.Sub(cur.StartedAt)), formatDate(cur.StartedAt))
		if cur.StartedAt.IsZero() || cur.ResolvedAt.IsZero() {
			c = "Resolved."
		}
		at := strconv.FormatInt(cur.ResolvedAt.UnixMilli(), 10)
		out = append(out, step{id: "resolve-" + at, comment: c}, step{id: "resolve-move-" + at, move: &yes})
	}
	return out
}

func times(n int) string {
	if n == 1 {
		return "once so far"
	}
	return strconv.Itoa(n) + " times so far"
}

func newVMs(prev, cur []string) []string {
	var out []string
	for _, v := range cur {
		if !slices.Contains(prev, v) {
			out = append(out, v)
		}
	}
	return out
}

func escapeList(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = escapeWiki(s)
	}
	return strings.Join(out, ", ")
}

// recurrenceComment opens the reuse of a ticket by a new incident with
// the same fingerprint.
func recurrenceComment(inc *model.Incident) string {
	return fmt.Sprintf("The same problem came back as incident %s (started %s UTC, severity %s): %s. This ticket follows it from now on.",
		escapeWiki(inc.ID), formatDate(inc.StartedAt), escapeWiki(string(inc.Severity)), escapeWiki(title(inc)))
}
