package remedy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	awaiting := func(need int, approvals ...string) model.Remedy {
		r := model.Remedy{ID: "rem-1", Incident: "inc-1", Action: model.ActionMigrateHost, State: model.RemedyAwaiting,
			RequestedBy: "U-req", ApprovalsNeeded: need, ExpiresAt: t0.Add(30 * time.Minute)}
		for _, a := range approvals {
			r.Approvals = append(r.Approvals, model.Decision{User: a, At: t0})
		}
		return r
	}
	tests := []struct {
		name       string
		r          model.Remedy
		kind, user string
		reason     string
		notAllowed bool
		recovering string
		at         time.Time
		wantState  model.RemedyState
		wantErr    string // substring of the refusal; "" = accepted
		approvals  int
	}{
		{name: "an approver approves", r: awaiting(1), kind: Approve, user: "U1", wantState: model.RemedyApproved, approvals: 1},
		{name: "someone not on the list may not", r: awaiting(1), kind: Approve, user: "U9", notAllowed: true, wantErr: "not on the approvers' list"},
		{name: "nor deny", r: awaiting(1), kind: Deny, user: "U9", reason: "no", notAllowed: true, wantErr: "not on the approvers' list"},
		{name: "two needed: the first leaves it awaiting", r: awaiting(2), kind: Approve, user: "U1", wantState: model.RemedyAwaiting, approvals: 1},
		{name: "two needed: a second distinct approver approves it", r: awaiting(2, "U1"), kind: Approve, user: "U2", wantState: model.RemedyApproved, approvals: 2},
		{name: "two needed: the same approver twice is refused", r: awaiting(2, "U1"), kind: Approve, user: "U1", wantErr: "already approved"},
		{name: "two needed: the requester approving first still needs another", r: awaiting(2), kind: Approve, user: "U-req", wantState: model.RemedyAwaiting, approvals: 1},
		{name: "two needed: requester plus another approves it", r: awaiting(2, "U-req"), kind: Approve, user: "U2", wantState: model.RemedyApproved, approvals: 2},
		{name: "a double approve of an approved remedy is refused", r: func() model.Remedy { r := awaiting(1, "U1"); r.State = model.RemedyApproved; return r }(),
			kind: Approve, user: "U1", wantErr: "already approved"},
		{name: "approving a running remedy is refused", r: func() model.Remedy { r := awaiting(1); r.State = model.RemedyRunning; return r }(),
			kind: Approve, user: "U1", wantErr: "already running"},
		{name: "approving after the expiry time is refused", r: awaiting(1), kind: Approve, user: "U1", at: t0.Add(30 * time.Minute), wantErr: "expired"},
		{name: "approving an expired remedy is refused", r: func() model.Remedy { r := awaiting(1); r.State = model.RemedyExpired; return r }(),
			kind: Approve, user: "U1", wantErr: "expired"},
		{name: "deny needs a reason", r: awaiting(1), kind: Deny, user: "U1", reason: "  ", wantErr: "needs a reason"},
		{name: "deny with a reason too long", r: awaiting(1), kind: Deny, user: "U1", reason: strings.Repeat("é", MaxReasonLen+1), wantErr: "keep it under 500"},
		{name: "deny with the longest reason", r: awaiting(1), kind: Deny, user: "U1", reason: strings.Repeat("é", MaxReasonLen), wantState: model.RemedyDenied},
		{name: "deny with a reason", r: awaiting(2, "U1"), kind: Deny, user: "U2", reason: "host is fine", wantState: model.RemedyDenied, approvals: 1},
		{name: "deny of a denied remedy is refused", r: func() model.Remedy { r := awaiting(1); r.State = model.RemedyDenied; return r }(),
			kind: Deny, user: "U1", reason: "x", wantErr: "already denied"},
		{name: "approving while the platform recovers is refused", r: awaiting(1), kind: Approve, user: "U1", recovering: "vm-1, see inc-9", wantErr: "platform is recovering"},
		{name: "denying while the platform recovers is allowed", r: awaiting(1), kind: Deny, user: "U1", reason: "platform has it", recovering: "vm-1, see inc-9", wantState: model.RemedyDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = t0.Add(time.Minute)
			}
			before := len(tc.r.Approvals)
			got, entry, err := Decide(tc.r, tc.kind, tc.user, tc.reason, !tc.notAllowed, tc.recovering, at)
			if tc.wantErr != "" {
				var re *RefusedError
				if !errors.As(err, &re) || !strings.Contains(re.Msg, tc.wantErr) {
					t.Fatalf("err = %v, want a refusal containing %q", err, tc.wantErr)
				}
				if len(tc.r.Approvals) != before {
					t.Error("a refusal changed the caller's remedy")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.State != tc.wantState {
				t.Errorf("state = %s, want %s", got.State, tc.wantState)
			}
			if len(got.Approvals) != tc.approvals {
				t.Errorf("approvals = %v, want %d", got.Approvals, tc.approvals)
			}
			if entry.Who != tc.user || entry.What == "" || !entry.At.Equal(at) {
				t.Errorf("audit entry = %+v, want who %s at %s", entry, tc.user, at)
			}
			if tc.kind == Deny && (got.Denial == nil || got.Denial.Reason != strings.TrimSpace(tc.reason) || got.Denial.User != tc.user) {
				t.Errorf("denial = %+v", got.Denial)
			}
		})
	}
}
