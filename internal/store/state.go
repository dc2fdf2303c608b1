package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

//go:embed lua/apply.lua
var applySource string

var applyScript = redis.NewScript(applySource)

//go:embed lua/save_period.lua
var savePeriodSource string

var savePeriodScript = redis.NewScript(savePeriodSource)

// Apply stamps TimeStored = clock.Now() on every observation (in place, so
// the caller sees the stamp) and writes them into the current state, one
// Lua script per 500 observations: each chunk is applied atomically in one
// round trip.
//
// For VMs it keeps state, host, site, event, attrs, source, Since and the
// latest stamps; for hosts the reported state, the latest hardware facts
// and the facts of the record's collection period (kept for
// PeriodRetention periods); for services the state per host and name.
// Records are ordered by time_generated, not by arrival: one older than
// what is stored does not change current state, Since moves only when the
// state changes, and a VM seen on a new host leaves the old host's VM set.
// A VM or host record without host or site keeps the one known. A VM
// record without a state is a heartbeat and changes nothing here. Facts
// merge per name, the newest generated value winning. Applying the same
// observations again changes nothing.
func (s *Store) Apply(ctx context.Context, obs []model.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	now := s.clock.Now()
	for i := range obs {
		obs[i].TimeStored = now
	}
	stored := formatTime(now)
	header := []any{
		s.k.vm(""), s.k.vms(), s.k.host(""), s.k.hosts(),
		s.k.hostFacts(""), s.k.hostVMs(""), s.k.hostServices(""), s.k.hostPeriods(""),
		s.k.service(""), s.k.sites(), s.k.siteVMs(""), s.k.siteHosts(""),
		stored, s.periodTTL().Milliseconds(), int64(s.periodTTL() / time.Second),
	}
	routing := []string{s.k.vms()}
	var args []any
	for chunk := range slices.Chunk(obs, s.applyChunk) {
		args = append(args[:0], header...)
		for i := range chunk {
			var err error
			if args, err = s.applyArgs(args, &chunk[i]); err != nil {
				return fmt.Errorf("apply observation %s %s: %w", chunk[i].Kind, chunk[i].Key(), err)
			}
		}
		res, err := applyScript.Run(ctx, s.rdb, routing, args...).Int64Slice()
		if err != nil {
			return fmt.Errorf("apply %d observations: %w", len(chunk), err)
		}
		if len(res) == 2 && res[1] > 0 {
			s.log.Debug("observations older than stored state left current state alone",
				"applied", res[0], "stale", res[1])
		}
	}
	return nil
}

func (s *Store) periodTTL() time.Duration {
	return time.Duration(s.retention) * s.period
}

// applyArgs appends one record in apply.lua's layout.
func (s *Store) applyArgs(args []any, o *model.Observation) ([]any, error) {
	args = append(args, string(o.Kind), o.ID, o.Host, o.Site, string(o.State), o.Event, o.Source,
		formatTime(o.TimeGenerated), formatTime(o.TimeReceived))
	switch o.Kind {
	case model.KindVM:
		attrs := ""
		if len(o.Attrs) > 0 {
			b, err := json.Marshal(o.Attrs) // map keys sorted: equal attrs, equal text
			if err != nil {
				return nil, fmt.Errorf("encode attrs: %w", err)
			}
			attrs = string(b)
		}
		args = append(args, attrs)
	case model.KindHost:
		start := model.PeriodStart(o.TimeGenerated, s.period)
		args = append(args, s.k.period(o.ID, start), start.Unix(), len(o.Attrs))
		for name, v := range o.Attrs {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("encode attr %s: %w", name, err)
			}
			args = append(args, name, string(b))
		}
	case model.KindService:
		args = append(args, o.Key())
	default:
		return nil, fmt.Errorf("unknown kind %q", o.Kind)
	}
	return args, nil
}

// VM returns the current state of one VM.
func (s *Store) VM(ctx context.Context, id string) (model.VMStatus, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.vm(id)).Result()
	if err != nil {
		return model.VMStatus{}, fmt.Errorf("read vm %s: %w", id, err)
	}
	if len(h) == 0 {
		return model.VMStatus{}, fmt.Errorf("read vm %s: %w", id, ErrNotFound)
	}
	return vmStatus(id, h), nil
}

func vmStatus(id string, h map[string]string) model.VMStatus {
	v := model.VMStatus{
		ID:     id,
		Host:   h["host"],
		Site:   h["site"],
		State:  model.State(h["state"]),
		Event:  h["event"],
		Source: h["source"],
		Since:  parseTime(h["since"]),
		Last:   stamps(h),
	}
	if a := h["attrs"]; a != "" {
		_ = json.Unmarshal([]byte(a), &v.Attrs) // written by Apply from a map
	}
	return v
}

func stamps(h map[string]string) model.Stamps {
	return model.Stamps{
		Generated: parseTime(h["gen"]),
		Received:  parseTime(h["recv"]),
		Stored:    parseTime(h["stored"]),
	}
}

// ListVMs returns the VMs of a site, of a host, of both, or (both empty)
// of the whole fleet, sorted by id.
func (s *Store) ListVMs(ctx context.Context, site, host string) ([]model.VMStatus, error) {
	set := s.k.vms()
	switch {
	case host != "":
		set = s.k.hostVMs(host)
	case site != "":
		set = s.k.siteVMs(site)
	}
	ids, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, fmt.Errorf("list vms of site %q host %q: %w", site, host, err)
	}
	sort.Strings(ids)
	out := make([]model.VMStatus, 0, len(ids))
	for batch := range slices.Chunk(ids, 1000) {
		cmds := make([]*redis.MapStringStringCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.HGetAll(ctx, s.k.vm(id))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list vms of site %q host %q: %w", site, host, err)
		}
		for i, c := range cmds {
			h := c.Val()
			if len(h) == 0 {
				continue
			}
			v := vmStatus(batch[i], h)
			if site != "" && v.Site != site {
				continue
			}
			if host != "" && v.Host != host {
				continue
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// Sites lists every site seen, sorted.
func (s *Store) Sites(ctx context.Context) ([]string, error) {
	sites, err := s.rdb.SMembers(ctx, s.k.sites()).Result()
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	sort.Strings(sites)
	return sites, nil
}

// Host returns the current state of one host with its VMs, its services
// and its most recent periods (at most periods of them, newest first;
// zero or less gives none). State and Since are those of the derived state
// that SaveHostPeriod last recorded for the newest period (HostUnknown and
// zero when none is recorded). A host is found if it reported itself or if
// a VM or service was seen on it.
func (s *Store) Host(ctx context.Context, id string, periods int) (model.HostStatus, error) {
	var (
		hostCmd  *redis.MapStringStringCmd
		factsCmd *redis.MapStringStringCmd
		vmsCmd   *redis.StringSliceCmd
		svcsCmd  *redis.StringSliceCmd
		perCmd   *redis.StringSliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		hostCmd = p.HGetAll(ctx, s.k.host(id))
		factsCmd = p.HGetAll(ctx, s.k.hostFacts(id))
		vmsCmd = p.SMembers(ctx, s.k.hostVMs(id))
		svcsCmd = p.SMembers(ctx, s.k.hostServices(id))
		if periods > 0 {
			perCmd = p.ZRevRange(ctx, s.k.hostPeriods(id), 0, int64(periods-1))
		}
		return nil
	})
	if err != nil {
		return model.HostStatus{}, fmt.Errorf("read host %s: %w", id, err)
	}
	h := hostCmd.Val()
	hs := model.HostStatus{
		ID:       id,
		Site:     h["site"],
		Reported: model.State(h["reported"]),
		State:    model.HostState(h["pstate"]),
		Since:    parseTime(h["psince"]),
		Facts:    facts(factsCmd.Val()),
		Last:     stamps(h),
		VMs:      vmsCmd.Val(),
		Services: []model.ServiceStatus{},
		Periods:  []model.HostPeriod{},
	}
	if hs.State == "" {
		hs.State = model.HostUnknown
	}
	if hs.VMs == nil {
		hs.VMs = []string{}
	}
	sort.Strings(hs.VMs)
	names := svcsCmd.Val()
	sort.Strings(names)
	var starts []string
	if perCmd != nil {
		starts = perCmd.Val()
	}
	if len(h) == 0 && len(hs.Facts) == 0 && len(hs.VMs) == 0 && len(names) == 0 && len(starts) == 0 {
		return model.HostStatus{}, fmt.Errorf("read host %s: %w", id, ErrNotFound)
	}
	if len(names) == 0 && len(starts) == 0 {
		return hs, nil
	}

	svcCmds := make([]*redis.MapStringStringCmd, len(names))
	perCmds := make([]*redis.MapStringStringCmd, len(starts))
	startTimes := make([]time.Time, len(starts))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			svcCmds[i] = p.HGetAll(ctx, s.k.service(id+"/"+name))
		}
		for i, st := range starts {
			sec, _ := strconv.ParseInt(st, 10, 64)
			startTimes[i] = time.Unix(sec, 0).UTC()
			perCmds[i] = p.HGetAll(ctx, s.k.period(id, startTimes[i]))
		}
		return nil
	})
	if err != nil {
		return model.HostStatus{}, fmt.Errorf("read services and periods of host %s: %w", id, err)
	}
	for i, c := range svcCmds {
		sh := c.Val()
		if len(sh) == 0 {
			continue
		}
		hs.Services = append(hs.Services, model.ServiceStatus{
			Host:  id,
			Name:  names[i],
			State: model.State(sh["state"]),
			Since: parseTime(sh["since"]),
			Last:  stamps(sh),
		})
	}
	for i, c := range perCmds {
		ph := c.Val()
		if len(ph) == 0 {
			continue // expired
		}
		p := model.HostPeriod{
			Start: startTimes[i],
			State: model.HostState(ph["state"]),
			Facts: facts(ph),
		}
		if p.State == "" {
			p.State = model.HostUnknown
		}
		if r := ph["reasons"]; r != "" {
			_ = json.Unmarshal([]byte(r), &p.Reasons) // written by SaveHostPeriod
		}
		hs.Periods = append(hs.Periods, p)
	}
	return hs, nil
}

// HostStates returns the site, reported state and derived state (with its
// since) of each of ids, read in pipelined batches: what Host gives without
// facts, VMs, services or periods, for views over many hosts. Hosts the
// store knows nothing of are left out; State is HostUnknown for a host with
// no period recorded.
func (s *Store) HostStates(ctx context.Context, ids []string) (map[string]model.HostStatus, error) {
	out := make(map[string]model.HostStatus, len(ids))
	for batch := range slices.Chunk(ids, 1000) {
		cmds := make([]*redis.SliceCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.HMGet(ctx, s.k.host(id), "site", "reported", "pstate", "psince")
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read state of %d hosts: %w", len(batch), err)
		}
		for i, c := range cmds {
			v := c.Val()
			str := func(j int) string {
				if j < len(v) {
					if s, ok := v[j].(string); ok {
						return s
					}
				}
				return ""
			}
			if str(0) == "" && str(1) == "" && str(2) == "" {
				continue
			}
			hs := model.HostStatus{ID: batch[i], Site: str(0), Reported: model.State(str(1)),
				State: model.HostState(str(2)), Since: parseTime(str(3))}
			if hs.State == "" {
				hs.State = model.HostUnknown
			}
			out[batch[i]] = hs
		}
	}
	return out, nil
}

// facts decodes the "v:<name>" fields of a facts hash.
func facts(h map[string]string) map[string]any {
	var out map[string]any
	for f, raw := range h {
		name, ok := strings.CutPrefix(f, "v:")
		if !ok {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			continue
		}
		if out == nil {
			out = make(map[string]any)
		}
		out[name] = v
	}
	return out
}

// SaveHostPeriod records the state the rules derived for a host in one
// collection period, with the reasons. The facts of the period come from
// Apply; p.Facts is not stored. When p is the newest period with a derived
// state, it also becomes the host's State (and Since moves if the state
// changed).
func (s *Store) SaveHostPeriod(ctx context.Context, host string, p model.HostPeriod) error {
	if p.Start.IsZero() {
		return errors.New("save host period: start is required")
	}
	start := model.PeriodStart(p.Start, s.period)
	reasons := ""
	if len(p.Reasons) > 0 {
		b, err := json.Marshal(p.Reasons)
		if err != nil {
			return fmt.Errorf("save period %s of host %s: encode reasons: %w", start.Format(time.RFC3339), host, err)
		}
		reasons = string(b)
	}
	state := p.State
	if state == "" {
		state = model.HostUnknown
	}
	err := savePeriodScript.Run(ctx, s.rdb,
		[]string{s.k.period(host, start), s.k.hostPeriods(host), s.k.host(host)},
		start.Unix(), formatTime(start), string(state), reasons,
		s.periodTTL().Milliseconds(), int64(s.periodTTL()/time.Second),
	).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("save period %s of host %s: %w", start.Format(time.RFC3339), host, err)
	}
	return nil
}
