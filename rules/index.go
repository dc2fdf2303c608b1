package rules

import (
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// The fleet index is the engine's in-memory picture of the fleet: enough to
// build a rule's environment without a store round trip. It is rebuilt from
// observations after a restart (open incidents are loaded from the store).

// sourceRec is a collector source.
type sourceRec struct {
	name     string
	lastSeen time.Time // engine clock
	lastGen  time.Time // source clock
	stale    bool
	vms      int
	hosts    int
	matches  []match
}

// periodRec is what is known of a host in one collection period.
type periodRec struct {
	idx      int64 // period number since the epoch
	valid    bool
	hasFacts bool
	facts    FactsEnv
	state    model.HostState
	hwState  model.HostState
	reasons  uint64
	crashes  int
	// saved is the (state, reasons) last handed to SaveHostPeriod, so an
	// unchanged derivation is not written again.
	savedState   model.HostState
	savedReasons uint64
	savedFacts   FactsEnv
	dirty        bool
}

// hostRec is one host and a ring of its recent periods.
type hostRec struct {
	id       string
	site     string
	reported string
	src      *sourceRec
	lastSeen time.Time
	lastGen  time.Time
	stale    bool
	ring     []periodRec
	latest   int64
	vms      []*vmRec
	vmsDown  int
	services []*serviceRec
	svcMap   map[string]string
	svcDown  int
	matches  []match
}

// period returns the record of period idx, or nil.
func (h *hostRec) period(idx int64) *periodRec {
	if len(h.ring) == 0 {
		return nil
	}
	p := &h.ring[int(uint64(idx)%uint64(len(h.ring)))]
	if !p.valid || p.idx != idx {
		return nil
	}
	return p
}

// periodFor returns the record of period idx, creating it (and evicting
// the period that shared its slot) when it is not older than the ring.
func (h *hostRec) periodFor(idx int64) *periodRec {
	if idx <= h.latest-int64(len(h.ring)) {
		return nil // too old to keep
	}
	p := &h.ring[int(uint64(idx)%uint64(len(h.ring)))]
	if !p.valid || p.idx != idx {
		*p = periodRec{idx: idx, valid: true, state: model.HostUnknown, hwState: model.HostUnknown, facts: defaultFacts}
	}
	if idx > h.latest {
		h.latest = idx
	}
	return p
}

// defaultFacts are the facts of a period before any arrive: flags read
// healthy and counts zero, so one missing attribute does not look like a
// fault.
var defaultFacts = FactsEnv{NICUp: true, PSUOK: true, StorageReachable: true, NetworkReachable: true}

// mergeFacts folds an observation's attributes into a period worst-wins:
// several reports in one period must not hide an error one of them saw.
func mergeFacts(f *FactsEnv, attrs map[string]any) {
	f.Reported = true
	num := func(dst *float64, name string) {
		if v, ok := attrs[name].(float64); ok && v > *dst {
			*dst = v
		}
	}
	flag := func(dst *bool, name string) {
		if v, ok := attrs[name].(bool); ok && !v {
			*dst = false
		}
	}
	num(&f.ECCUncorrected, model.AttrECCUncorrected)
	num(&f.ECCCorrected, model.AttrECCCorrected)
	num(&f.MCE, model.AttrMCE)
	num(&f.DiskErrors, model.AttrDiskErrors)
	num(&f.TempC, model.AttrTempC)
	flag(&f.NICUp, model.AttrNICUp)
	flag(&f.PSUOK, model.AttrPSUOK)
	flag(&f.StorageReachable, model.AttrStorageReachable)
	flag(&f.NetworkReachable, model.AttrNetworkReachable)
}

// factsMap renders facts for the store's HostPeriod.
func factsMap(f FactsEnv) map[string]any {
	return map[string]any{
		model.AttrECCUncorrected:   f.ECCUncorrected,
		model.AttrECCCorrected:     f.ECCCorrected,
		model.AttrMCE:              f.MCE,
		model.AttrDiskErrors:       f.DiskErrors,
		model.AttrTempC:            f.TempC,
		model.AttrNICUp:            f.NICUp,
		model.AttrPSUOK:            f.PSUOK,
		model.AttrStorageReachable: f.StorageReachable,
		model.AttrNetworkReachable: f.NetworkReachable,
	}
}

// vmRec is one VM.
type vmRec struct {
	id       string
	site     string
	h        *hostRec
	hpos     int // index in h.vms
	src      *sourceRec
	state    model.State
	event    string
	attrs    map[string]any
	since    time.Time
	lastGen  time.Time
	lastSeen time.Time
	crashed  bool
	stale    bool
	matches  []match
	// judged is a copy of the host period the VM was last judged by while
	// down, on host judgedOn: a VM can stay down longer than the host's
	// history ring, and its verdict must not change when that period
	// leaves the ring.
	judged   *periodRec
	judgedOn *hostRec
}

// judgedPeriod returns the host period a down VM is judged by: pr (the
// period idx from the ring), remembered for later, or, once the period has
// left the ring, the copy remembered of it.
func (v *vmRec) judgedPeriod(pr *periodRec, idx int64) *periodRec {
	if pr != nil {
		if v.judged == nil {
			v.judged = new(periodRec)
		}
		*v.judged = *pr
		v.judgedOn = v.h
		return pr
	}
	if v.judged != nil && v.judgedOn == v.h && v.judged.idx == idx && v.judged.valid {
		return v.judged
	}
	return nil
}

// crashedState says whether a VM in this state with these attributes
// crashed: libvirt's default on_crash=destroy reports a crash as shutoff
// with reason crashed.
func crashedState(s model.State, attrs map[string]any) bool {
	if s == model.StateCrashed {
		return true
	}
	if s == model.StateShutoff {
		r, _ := attrs[model.AttrCrashReason].(string)
		return r != ""
	}
	return false
}

// serviceRec is one service component on a host.
type serviceRec struct {
	key     string // "host/name"
	name    string
	h       *hostRec
	state   model.State
	since   time.Time
	lastGen time.Time
	matches []match
}

// match records that a subject currently satisfies a rule and which
// incident it belongs to.
type match struct {
	rule *Rule
	inc  *incState
}

// fleet is the index.
type fleet struct {
	vms      map[string]*vmRec
	hosts    map[string]*hostRec
	services map[string]*serviceRec
	sources  map[string]*sourceRec
	ringLen  int
}

func newFleet(ringLen int) *fleet {
	return &fleet{
		vms:      map[string]*vmRec{},
		hosts:    map[string]*hostRec{},
		services: map[string]*serviceRec{},
		sources:  map[string]*sourceRec{},
		ringLen:  ringLen,
	}
}

func (f *fleet) source(name string) *sourceRec {
	s := f.sources[name]
	if s == nil {
		s = &sourceRec{name: name}
		f.sources[name] = s
	}
	return s
}

func (f *fleet) host(id string) *hostRec {
	h := f.hosts[id]
	if h == nil {
		h = &hostRec{id: id, ring: make([]periodRec, f.ringLen), svcMap: map[string]string{}}
		f.hosts[id] = h
	}
	return h
}

// moveVM puts v on host h (nil for none), keeping host lists and counts.
func (f *fleet) moveVM(v *vmRec, h *hostRec) {
	if v.h == h {
		return
	}
	if old := v.h; old != nil {
		last := len(old.vms) - 1
		old.vms[v.hpos] = old.vms[last]
		old.vms[v.hpos].hpos = v.hpos
		old.vms[last] = nil
		old.vms = old.vms[:last]
		if v.state.Down() {
			old.vmsDown--
		}
	}
	v.h = h
	if h != nil {
		v.hpos = len(h.vms)
		h.vms = append(h.vms, v)
		if v.state.Down() {
			h.vmsDown++
		}
	}
}
