package bot

import (
	"context"
	"fmt"
	"slices"
)

// Group is the permission a verb needs. Verbs that only read need none.
type Group string

// Permission groups.
const (
	// GroupRead is for lookups; everyone may run them.
	GroupRead Group = ""
	// GroupAck is for ack, silence and unsilence.
	GroupAck Group = "ack"
	// GroupApprove is for approve and deny: the verbs that change the fleet.
	GroupApprove Group = "approve"
)

// Everyone, as an allow-list entry, lets every user in.
const Everyone = "*"

// Permissions holds the allow-lists, one per group. An entry is a user ID,
// a group the Membership checker knows (a Slack user group), or Everyone.
//
// The defaults differ on purpose: an empty Ack list lets everyone
// acknowledge and silence (harmless, and what the demo wants), while an
// empty Approve list lets nobody approve (a remedy moves VMs; approvers must
// be named).
type Permissions struct {
	Ack     []string
	Approve []string
}

// Membership says whether a user belongs to a named group of users (for
// Slack, a user group ID such as S0PAY). It is optional.
type Membership interface {
	IsMember(ctx context.Context, user, group string) (bool, error)
}

// allowed reports whether user may run verbs of group g, and if not, why.
func (p Permissions) allowed(ctx context.Context, m Membership, g Group, user string) (ok bool, why string, err error) {
	var list []string
	switch g {
	case GroupRead:
		return true, "", nil
	case GroupAck:
		if len(p.Ack) == 0 {
			return true, "", nil
		}
		list = p.Ack
	case GroupApprove:
		if len(p.Approve) == 0 {
			return false, "nobody may approve or deny: no approvers are configured", nil
		}
		list = p.Approve
	default:
		return false, fmt.Sprintf("the %q permission is not configured", g), nil
	}
	if user != "" && (slices.Contains(list, user) || slices.Contains(list, Everyone)) {
		return true, "", nil
	}
	if m != nil && user != "" {
		for _, entry := range list {
			if entry == user || entry == Everyone {
				continue
			}
			in, err := m.IsMember(ctx, user, entry)
			if err != nil {
				return false, "", fmt.Errorf("check whether %s is in %s: %w", user, entry, err)
			}
			if in {
				return true, "", nil
			}
		}
	}
	return false, fmt.Sprintf("you are not on the %q allow-list", string(g)), nil
}
