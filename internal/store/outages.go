package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys of the outage books (kept here, next to their only users):
//
//	{vt}:outvm:<vm>     hash   outage intervals of one VM: start (unix ns) -> Outage JSON
//	{vt}:outend         zset   one member per interval, score = end (ms), +inf while open:
//	                           "<start ns>:<end ns or ->:<attribution>:<cause>:<host>:<site>:<vm>",
//	                           cause, host and site query-escaped (no ':'), the VM last
//	                           (so reports read every interval they need from this one key)
//	{vt}:outopen        hash   vm -> start (unix ns) of its open interval
func (k keys) outageVM(vm string) string { return k.base + "outvm:" + vm }
func (k keys) outageEnds() string        { return k.base + "outend" }
func (k keys) outageOpen() string        { return k.base + "outopen" }

// OutageGroup is the consumer group through which the outage books read the
// incidents stream.
const OutageGroup = "outages"

// OutageCause is one incident's claim on an outage interval: the interval
// overlapped the incident, whose classification gives Attribution.
type OutageCause struct {
	Incident    string `json:"incident"`
	Attribution string `json:"attribution"`
	Cause       string `json:"cause,omitempty"`
	Rule        string `json:"rule,omitempty"`
	Severity    string `json:"severity,omitempty"`
	Silenced    bool   `json:"silenced,omitempty"`
}

// Outage is one period during which a VM was not running. End is zero while
// the VM is still down. Attribution is decided by the outage books from
// Causes; it is stored so that reports need not decide it again.
type Outage struct {
	VM          string        `json:"vm"`
	Host        string        `json:"host,omitempty"`
	Site        string        `json:"site,omitempty"`
	Start       time.Time     `json:"start"`
	End         time.Time     `json:"end,omitzero"`
	State       string        `json:"state,omitempty"`
	Attribution string        `json:"attribution"`
	Cause       string        `json:"cause,omitempty"`
	Causes      []OutageCause `json:"causes,omitempty"`
}

// Open reports whether the VM is still down.
func (o *Outage) Open() bool { return o.End.IsZero() }

func outageField(start time.Time) string { return strconv.FormatInt(start.UnixNano(), 10) }

// outageMember is an interval's summary, as the end index keeps it.
func outageMember(o *Outage) string {
	end := "-"
	if !o.Open() {
		end = strconv.FormatInt(o.End.UnixNano(), 10)
	}
	return outageField(o.Start) + ":" + end + ":" + url.QueryEscape(o.Attribution) + ":" + url.QueryEscape(o.Cause) + ":" +
		url.QueryEscape(o.Host) + ":" + url.QueryEscape(o.Site) + ":" + o.VM
}

// parseOutageMember reads what outageMember wrote. Reports parse hundreds
// of thousands of members, so it cuts fields in place (the strings share
// the member's memory) and unescapes only fields that need it.
func parseOutageMember(m string) (Outage, bool) {
	var f [7]string
	rest := m
	for i := range 6 {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, ":"); !ok {
			return Outage{}, false
		}
	}
	f[6] = rest
	start, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Outage{}, false
	}
	o := Outage{VM: f[6], Start: time.Unix(0, start).UTC()}
	if f[1] != "-" {
		end, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return Outage{}, false
		}
		o.End = time.Unix(0, end).UTC()
	}
	ok := true
	for i, dst := range [4]*string{&o.Attribution, &o.Cause, &o.Host, &o.Site} {
		v := f[2+i]
		if strings.ContainsAny(v, "%+") {
			if v, err = url.QueryUnescape(v); err != nil {
				ok = false
			}
		}
		*dst = v
	}
	return o, ok
}

func outageEndScore(o *Outage) float64 {
	if o.Open() {
		return math.Inf(1)
	}
	return float64(o.End.UnixMilli())
}

// Outages returns the outage intervals of one VM, oldest first.
func (s *Store) Outages(ctx context.Context, vm string) ([]Outage, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.outageVM(vm)).Result()
	if err != nil {
		return nil, fmt.Errorf("read outages of vm %s: %w", vm, err)
	}
	return decodeOutages(vm, h), nil
}

func decodeOutages(vm string, h map[string]string) []Outage {
	out := make([]Outage, 0, len(h))
	for _, doc := range h {
		var o Outage
		if err := json.Unmarshal([]byte(doc), &o); err != nil || o.VM != vm {
			continue // not written by UpdateOutages; never fatal to the books
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// ErrOutageBusy is returned (wrapped) by UpdateOutages when another replica
// kept changing the same VM's intervals; the caller retries later.
var ErrOutageBusy = errors.New("outage intervals changed concurrently")

// UpdateOutages reads the intervals of vm, passes them (oldest first) to
// change, and writes what it returns in one transaction, retried a few times
// if another replica changed the VM's intervals meanwhile. Intervals are
// identified by their start: one that change drops is deleted, one whose
// start moved is a new interval. At most one returned interval may be open.
func (s *Store) UpdateOutages(ctx context.Context, vm string, change func([]Outage) ([]Outage, error)) error {
	key := s.k.outageVM(vm)
	txf := func(tx *redis.Tx) error {
		h, err := tx.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		old := decodeOutages(vm, h)
		next, err := change(slices.Clone(old))
		if err != nil {
			return err
		}
		open := 0
		for i := range next {
			next[i].VM = vm
			if next[i].Open() {
				open++
			}
		}
		if open > 1 {
			return fmt.Errorf("update outages of vm %s: %d open intervals, at most one allowed", vm, open)
		}
		keep := make(map[string]bool, len(next))
		for i := range next {
			keep[outageField(next[i].Start)] = true
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i := range old {
				f := outageField(old[i].Start)
				if !keep[f] {
					p.HDel(ctx, key, f)
				}
				p.ZRem(ctx, s.k.outageEnds(), outageMember(&old[i]))
			}
			p.HDel(ctx, s.k.outageOpen(), vm)
			for i := range next {
				o := &next[i]
				doc, err := json.Marshal(o)
				if err != nil {
					return err
				}
				f := outageField(o.Start)
				p.HSet(ctx, key, f, doc)
				p.ZAdd(ctx, s.k.outageEnds(), redis.Z{Score: outageEndScore(o), Member: outageMember(o)})
				if o.Open() {
					p.HSet(ctx, s.k.outageOpen(), vm, f)
				}
			}
			return nil
		})
		return err
	}
	for range 5 {
		err := s.rdb.Watch(ctx, txf, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update outages of vm %s: %w", vm, err)
		}
		return nil
	}
	return fmt.Errorf("update outages of vm %s: %w", vm, ErrOutageBusy)
}

// OpenOutages returns the VMs that have an open outage interval, with the
// interval's start.
func (s *Store) OpenOutages(ctx context.Context) (map[string]time.Time, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.outageOpen()).Result()
	if err != nil {
		return nil, fmt.Errorf("read open outages: %w", err)
	}
	out := make(map[string]time.Time, len(h))
	for vm, f := range h {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			continue
		}
		out[vm] = time.Unix(0, ns).UTC()
	}
	return out, nil
}

// OutagesBetween returns every interval that overlaps [from, to): those
// open or ended at or after from, and started before to, ordered by VM,
// then start. They are summaries, read from one index in one round trip:
// VM, host, site, start, end, attribution and cause, without State and
// Causes (Outages gives a VM's intervals in full). Consecutive intervals of
// one VM share one VM string, so that comparing them is cheap.
func (s *Store) OutagesBetween(ctx context.Context, from, to time.Time) ([]Outage, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.k.outageEnds(), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list outages from %s: %w", from.Format(time.RFC3339), err)
	}
	parsed := make([]Outage, 0, len(members))
	// Grouping by VM through a map and sorting only the distinct names is
	// several times faster than sorting 300,000 intervals by name (a 30-day
	// report of 100,000 VMs): names like vm-000123 share long prefixes.
	group := make(map[string]int32)
	var names []string
	var gid []int32
	for _, m := range members {
		o, ok := parseOutageMember(m)
		if !ok || !o.Start.Before(to) || !o.Open() && o.End.Before(from) {
			continue
		}
		g, ok := group[o.VM]
		if !ok {
			g = int32(len(names))
			group[o.VM] = g
			names = append(names, o.VM)
		}
		o.VM = names[g] // one string per VM: comparing them is then cheap
		gid = append(gid, g)
		parsed = append(parsed, o)
	}
	byName := make([]int32, len(names))
	for i := range byName {
		byName[i] = int32(i)
	}
	slices.SortFunc(byName, func(a, b int32) int { return strings.Compare(names[a], names[b]) })
	// Counting sort: offset[g] is where group g's intervals begin.
	offset := make([]int32, len(names)+1)
	for _, g := range gid {
		offset[g+1]++
	}
	pos := int32(0)
	for _, g := range byName {
		n := offset[g+1]
		offset[g+1] = pos // start of g, shifted by one for the fill below
		pos += n
	}
	perm := make([]int32, len(parsed)) // perm[k]: index in parsed of the k-th interval
	for i, g := range gid {
		perm[offset[g+1]] = int32(i)
		offset[g+1]++
	}
	// Within a VM (a handful of intervals), oldest first.
	for k := 1; k < len(perm); k++ {
		for j := k; j > 0 && gid[perm[j-1]] == gid[perm[j]] && parsed[perm[j]].Start.Before(parsed[perm[j-1]].Start); j-- {
			perm[j], perm[j-1] = perm[j-1], perm[j]
		}
	}
	// Put parsed in that order in place, following each cycle of the
	// permutation, rather than copy 300,000 intervals to a new slice.
	for i := range perm {
		if perm[i] < 0 {
			continue
		}
		tmp := parsed[i]
		j := i
		for {
			next := int(perm[j])
			perm[j] = -1
			if next == i {
				parsed[j] = tmp
				break
			}
			parsed[j] = parsed[next]
			j = next
		}
	}
	return parsed, nil
}

// PruneOutages deletes intervals that ended before before, so the books
// keep a bounded history. It returns how many it deleted.
func (s *Store) PruneOutages(ctx context.Context, before time.Time) (int, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.k.outageEnds(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before.UnixMilli(), 10),
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("prune outages before %s: %w", before.Format(time.RFC3339), err)
	}
	for batch := range slices.Chunk(members, 1000) {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range batch {
				if o, ok := parseOutageMember(m); ok {
					p.HDel(ctx, s.k.outageVM(o.VM), outageField(o.Start))
				}
				p.ZRem(ctx, s.k.outageEnds(), m)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("prune outages before %s: %w", before.Format(time.RFC3339), err)
		}
	}
	return len(members), nil
}

// CountVMs returns how many VMs the fleet (site "") or a site has.
func (s *Store) CountVMs(ctx context.Context, site string) (int, error) {
	set := s.k.vms()
	if site != "" {
		set = s.k.siteVMs(site)
	}
	n, err := s.rdb.SCard(ctx, set).Result()
	if err != nil {
		return 0, fmt.Errorf("count vms of site %q: %w", site, err)
	}
	return int(n), nil
}

// HostVMCounts returns how many VMs each of hosts has now.
func (s *Store) HostVMCounts(ctx context.Context, hosts []string) (map[string]int, error) {
	out := make(map[string]int, len(hosts))
	for batch := range slices.Chunk(hosts, 1000) {
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, h := range batch {
				cmds[i] = p.SCard(ctx, s.k.hostVMs(h))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("count vms of %d hosts: %w", len(batch), err)
		}
		for i, c := range cmds {
			out[batch[i]] = int(c.Val())
		}
	}
	return out, nil
}
