package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Inventory keys (see keys.go for the others):
//
//	{vt}:invlayer:<source>  hash  one source's relations: "<kind> <field> <name>" -> value
//	{vt}:invhist            zset  changes as JSON, score = time (ms)
//	{vt}:invseq             string  change counter: the inventory's version
func (k keys) inventoryLayer(source string) string { return k.base + "invlayer:" + source }
func (k keys) inventoryHistory() string            { return k.base + "invhist" }
func (k keys) inventorySeq() string                { return k.base + "invseq" }

// MaxInventoryHistory is how many relation changes are kept; older ones
// are dropped as new ones are recorded.
const MaxInventoryHistory = 100_000

// applyInventoryScript writes relations into one source's layer and records
// every change in the history, in one step: the layer and its history never
// disagree, and an update is applied whole or not at all. With replace set,
// relations of the layer that the update does not name are removed (a file
// is the whole truth for its layer); otherwise the update only adds and
// changes (an API push merges by name). An empty value removes a relation.
var applyInventoryScript = redis.NewScript(`
local source, actor, ms, ts = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local replace, maxh = ARGV[5] == '1', tonumber(ARGV[6])
local changes = {}
local given = {}
for i = 7, #ARGV, 4 do
  local kind, field, name, value = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local f = kind .. ' ' .. field .. ' ' .. name
  given[f] = true
  local old = redis.call('HGET', KEYS[1], f) or ''
  if old ~= value then
    if value == '' then
      redis.call('HDEL', KEYS[1], f)
    else
      redis.call('HSET', KEYS[1], f, value)
    end
    changes[#changes+1] = {kind, name, field, old, value}
  end
end
if replace then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local f = all[i]
    if not given[f] then
      redis.call('HDEL', KEYS[1], f)
      local kind, field, name = string.match(f, '^(%S+) (%S+) (.*)$')
      changes[#changes+1] = {kind, name, field, all[i+1], ''}
    end
  end
end
for _, c in ipairs(changes) do
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], ms, cjson.encode({seq=seq, time=ts, source=source, actor=actor,
    kind=c[1], name=c[2], field=c[3], old=c[4], new=c[5]}))
end
if #changes > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(maxh + 1))
end
return #changes
`)

// ApplyInventory writes rels into the layer of source and records each
// change (with actor, and the clock's time) in the inventory history,
// atomically. replace makes rels the layer's whole content; otherwise they
// are merged into it by kind, name and field. It returns how many
// relations changed. Kinds, fields and sources must not contain spaces.
func (s *Store) ApplyInventory(ctx context.Context, source string, replace bool, actor string, rels []model.InventoryRelation) (int, error) {
	if source == "" || strings.ContainsAny(source, " \t\n") {
		return 0, fmt.Errorf("apply inventory: bad source %q", source)
	}
	now := s.clock.Now()
	flag := "0"
	if replace {
		flag = "1"
	}
	args := make([]any, 0, 6+4*len(rels))
	args = append(args, source, actor, now.UnixMilli(), now.UTC().Format(time.RFC3339Nano), flag, MaxInventoryHistory)
	for _, r := range rels {
		if r.Kind == "" || r.Field == "" || r.Name == "" || strings.ContainsAny(r.Kind+r.Field, " \t\n") {
			return 0, fmt.Errorf("apply inventory from %s: bad relation %s %s %q", source, r.Kind, r.Field, r.Name)
		}
		args = append(args, r.Kind, r.Field, r.Name, r.Value)
	}
	n, err := applyInventoryScript.Run(ctx, s.rdb,
		[]string{s.k.inventoryLayer(source), s.k.inventoryHistory(), s.k.inventorySeq()}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("apply inventory from %s: %w", source, err)
	}
	return n, nil
}

// InventoryVersion returns a number that grows with every relation change
// in any layer (0 before the first), so replicas notice changes with one
// GET.
func (s *Store) InventoryVersion(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, s.k.inventorySeq()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read inventory version: %w", err)
	}
	return v, nil
}

// InventoryLayers reads the relations of the named sources' layers and the
// version they were read at. The read is one MULTI, so the layers and the
// version agree.
func (s *Store) InventoryLayers(ctx context.Context, sources []string) (int64, map[string][]model.InventoryRelation, error) {
	cmds := make([]*redis.MapStringStringCmd, len(sources))
	var ver *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, s.k.inventorySeq())
		for i, src := range sources {
			cmds[i] = p.HGetAll(ctx, s.k.inventoryLayer(src))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, fmt.Errorf("read inventory: %w", err)
	}
	v, _ := strconv.ParseInt(ver.Val(), 10, 64)
	out := make(map[string][]model.InventoryRelation, len(sources))
	for i, src := range sources {
		h := cmds[i].Val()
		rels := make([]model.InventoryRelation, 0, len(h))
		for f, val := range h {
			kind, rest, ok1 := strings.Cut(f, " ")
			field, name, ok2 := strings.Cut(rest, " ")
			if !ok1 || !ok2 {
				s.log.Error("undecodable inventory relation skipped", "source", src, "field", f)
				continue
			}
			rels = append(rels, model.InventoryRelation{Kind: kind, Name: name, Field: field, Value: val})
		}
		slices.SortFunc(rels, func(a, b model.InventoryRelation) int {
			return strings.Compare(a.Kind+" "+a.Field+" "+a.Name, b.Kind+" "+b.Field+" "+b.Name)
		})
		out[src] = rels
	}
	return v, out, nil
}

// InventoryHistory returns the recorded relation changes made at or after
// since, oldest first (at most the last MaxInventoryHistory).
func (s *Store) InventoryHistory(ctx context.Context, since time.Time) ([]model.InventoryChange, error) {
	lo := "-inf"
	if !since.IsZero() {
		lo = strconv.FormatInt(since.UnixMilli(), 10)
	}
	docs, err := s.rdb.ZRangeByScore(ctx, s.k.inventoryHistory(), &redis.ZRangeBy{Min: lo, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("read inventory history: %w", err)
	}
	out := make([]model.InventoryChange, 0, len(docs))
	for _, d := range docs {
		var c model.InventoryChange
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			s.log.Error("undecodable inventory change skipped", "err", err)
			continue
		}
		if c.Time.Before(since) {
			continue // same millisecond, earlier nanoseconds
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b model.InventoryChange) int { return int(a.Seq - b.Seq) })
	return out, nil
}

// VMPlacements returns where each of ids runs (host, site) and its state,
// skipping VMs the store does not know, in the order of ids. It reads only
// those three fields, in pipelines of 1000, so the placement of a whole
// inventory is cheap to refresh.
func (s *Store) VMPlacements(ctx context.Context, ids []string) ([]model.VMStatus, error) {
	out := make([]model.VMStatus, 0, len(ids))
	for batch := range slices.Chunk(ids, 1000) {
		cmds := make([]*redis.SliceCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.HMGet(ctx, s.k.vm(id), "host", "site", "state")
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read placement of %d vms: %w", len(ids), err)
		}
		for i, c := range cmds {
			v := c.Val()
			if len(v) != 3 || (v[0] == nil && v[1] == nil && v[2] == nil) {
				continue
			}
			str := func(x any) string { s, _ := x.(string); return s }
			out = append(out, model.VMStatus{ID: batch[i], Host: str(v[0]), Site: str(v[1]), State: model.State(str(v[2]))})
		}
	}
	return out, nil
}
