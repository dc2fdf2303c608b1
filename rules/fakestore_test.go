package rules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// fakeStore is a hand-written in-memory IncidentStore with the same
// compare-and-set and claim semantics as internal/store.
type fakeStore struct {
	mu        sync.Mutex
	now       func() time.Time
	nextInc   int
	nextSil   int
	incidents map[string]model.Incident
	history   []model.Incident // every saved snapshot, in order
	deleted   []model.Incident // final snapshots of deleted incidents
	silences  map[string]model.Silence
	due       map[string]time.Time
	periods   map[string][]model.HostPeriod
	// failSave makes SaveIncident fail while positive (counted down).
	failSave int
}

// The fake's errors wrap the real store's, which the engine tells apart.
var errFakeConflict = fmt.Errorf("fake: %w", store.ErrConflict)

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{
		now:       now,
		incidents: map[string]model.Incident{},
		silences:  map[string]model.Silence{},
		due:       map[string]time.Time{},
		periods:   map[string][]model.HostPeriod{},
	}
}

var _ IncidentStore = (*fakeStore)(nil)

func (f *fakeStore) NextIncidentID(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextInc++
	return fmt.Sprintf("inc-%d", f.nextInc), nil
}

func (f *fakeStore) SaveIncident(_ context.Context, inc *model.Incident) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSave > 0 {
		f.failSave--
		return errors.New("fake: store down")
	}
	if cur, ok := f.incidents[inc.ID]; ok && cur.Version != inc.Version {
		return errFakeConflict
	} else if !ok && inc.Version != 0 {
		return errFakeConflict
	}
	inc.Version++
	inc.UpdatedAt = f.now()
	c := *inc
	c.VMs = append([]string(nil), inc.VMs...)
	c.Targets = append([]string(nil), inc.Targets...)
	f.incidents[inc.ID] = c
	f.history = append(f.history, c)
	return nil
}

func (f *fakeStore) DeleteIncident(_ context.Context, inc *model.Incident) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSave > 0 {
		f.failSave--
		return errors.New("fake: store down")
	}
	cur, ok := f.incidents[inc.ID]
	if !ok {
		if inc.Version != 0 {
			return errFakeConflict
		}
		return nil
	}
	if cur.Version != inc.Version {
		return errFakeConflict
	}
	inc.Version++
	inc.UpdatedAt = f.now()
	delete(f.incidents, inc.ID)
	f.deleted = append(f.deleted, *inc)
	return nil
}

func (f *fakeStore) Incident(_ context.Context, id string) (model.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc, ok := f.incidents[id]
	if !ok {
		return inc, fmt.Errorf("fake: incident %s: %w", id, store.ErrNotFound)
	}
	return inc, nil
}

func (f *fakeStore) OpenIncidents(context.Context) ([]model.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Incident
	for _, inc := range f.incidents {
		if inc.Open() {
			out = append(out, inc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeStore) Silences(context.Context) ([]model.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Silence
	for _, s := range f.silences {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeStore) SaveSilence(_ context.Context, s model.Silence) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.silences[s.ID] = s
	return nil
}

func (f *fakeStore) ExpireSilence(_ context.Context, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.silences[id]
	if !ok {
		return errors.New("fake: no such silence")
	}
	s.EndsAt = at
	f.silences[id] = s
	return nil
}

func (f *fakeStore) NextSilenceID(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextSil++
	return fmt.Sprintf("sil-%d", f.nextSil), nil
}

func (f *fakeStore) ScheduleEscalation(_ context.Context, id string, due time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.due[id] = due
	return nil
}

func (f *fakeStore) CancelEscalation(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.due, id)
	return nil
}

func (f *fakeStore) ClaimDueEscalations(_ context.Context, now time.Time, limit int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, due := range f.due {
		if !due.After(now) && len(out) < limit {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	for _, id := range out {
		delete(f.due, id)
	}
	return out, nil
}

func (f *fakeStore) SaveHostPeriod(_ context.Context, host string, p model.HostPeriod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.periods[host] = append(f.periods[host], p)
	return nil
}

// all returns every incident, ordered by id number.
func (f *fakeStore) all() []model.Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Incident
	for _, inc := range f.incidents {
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool {
		var a, b int
		fmt.Sscanf(out[i].ID, "inc-%d", &a)
		fmt.Sscanf(out[j].ID, "inc-%d", &b)
		return a < b
	})
	return out
}
