package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/clock"
)

// UserGroupMembers lists the members of a Slack user group
// (usergroups.users.list); *goslack.Client implements it.
type UserGroupMembers interface {
	GetUserGroupMembersContext(ctx context.Context, group string, options ...goslack.GetUserGroupMembersOption) ([]string, error)
}

var _ UserGroupMembers = (*goslack.Client)(nil)

// DefaultMembershipTTL is how long a user group's members are cached: long
// enough that a burst of clicks costs one call (usergroups.users.list is
// Tier 2, about 20 a minute), short enough that someone added to the
// on-call group can act within minutes.
const DefaultMembershipTTL = 5 * time.Minute

// MembershipOptions configures a Membership.
type MembershipOptions struct {
	// API lists user groups (required); it needs the usergroups:read scope.
	API UserGroupMembers
	// TTL is how long members are cached; default DefaultMembershipTTL.
	TTL    time.Duration
	Clock  clock.Clock  // default clock.Real{}
	Logger *slog.Logger // default discards
}

// Membership is a bot.Membership for Slack user groups, so allow-lists
// may name groups (S0PAY) as well as users (U0ALICE). Entries that are not
// user group IDs are members of nothing and cost no call.
type Membership struct {
	api   UserGroupMembers
	ttl   time.Duration
	clock clock.Clock
	log   *slog.Logger

	mu     sync.Mutex
	groups map[string]groupMembers
}

type groupMembers struct {
	users   map[string]struct{}
	fetched time.Time
}

var _ bot.Membership = (*Membership)(nil)

// NewMembership returns a Membership with an empty cache.
func NewMembership(opts MembershipOptions) (*Membership, error) {
	if opts.API == nil {
		return nil, errors.New("new slack membership: Options.API is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultMembershipTTL
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Membership{api: opts.API, ttl: opts.TTL, clock: opts.Clock, log: opts.Logger, groups: map[string]groupMembers{}}, nil
}

// IsUserGroupID reports whether id looks like a Slack user group ID
// ("S" and upper-case letters or digits).
func IsUserGroupID(id string) bool {
	if len(id) < 2 || id[0] != 'S' {
		return false
	}
	return strings.IndexFunc(id[1:], func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0
}

// IsMember reports whether user is in the user group group. Members are
// cached for the TTL; when a refresh fails, the members last seen are used
// (and the failure logged) rather than refusing everyone while Slack is
// unreachable; with nothing cached the error is returned.
func (m *Membership) IsMember(ctx context.Context, user, group string) (bool, error) {
	if user == "" || !IsUserGroupID(group) {
		return false, nil
	}
	now := m.clock.Now()
	m.mu.Lock()
	g, ok := m.groups[group]
	m.mu.Unlock()
	if !ok || now.Sub(g.fetched) >= m.ttl {
		fresh, err := m.fetch(ctx, group, now)
		switch {
		case err == nil:
			g = fresh
		case ok:
			m.log.Warn("refresh slack user group failed; using the members last seen", "group", group,
				"age", now.Sub(g.fetched).String(), "err", err)
		default:
			return false, err
		}
	}
	_, in := g.users[user]
	return in, nil
}

func (m *Membership) fetch(ctx context.Context, group string, now time.Time) (groupMembers, error) {
	users, err := m.api.GetUserGroupMembersContext(ctx, group)
	if err != nil {
		return groupMembers{}, fmt.Errorf("list members of slack user group %s: %w", group, err)
	}
	g := groupMembers{users: make(map[string]struct{}, len(users)), fetched: now}
	for _, u := range users {
		g.users[u] = struct{}{}
	}
	m.mu.Lock()
	m.groups[group] = g
	m.mu.Unlock()
	return g, nil
}
