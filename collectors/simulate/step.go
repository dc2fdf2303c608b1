package simulate

import (
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Step returns the observations of the period periodStart falls in: one
// host observation (with its hardware facts) and one libvirtd service
// observation per host, then one observation per VM that is being reported
// (all of them, or only the changed ones under Options.ChangesOnly). Every
// observation carries the period's aligned start as time_generated and
// passes model.Observation.Validate at that time.
//
// Step is pure: the result depends only on the fleet's options and the
// period index, so the same seed gives the same sequence, and a caller may
// step periods in any order, repeatedly, or concurrently. Hosts come before
// VMs so that a consumer reading the batch in order knows a host's facts of
// the period before it sees the VMs that crashed on it.
func (f *Fleet) Step(periodStart time.Time) []model.Observation {
	i := f.Index(periodStart)
	return f.step(i, !f.changesOnly || i <= 0)
}

// step builds period i; full reports every VM, otherwise only those whose
// report differs from period i-1.
func (f *Fleet) step(i int, full bool) []model.Observation {
	t := f.PeriodStart(i)
	cur := f.conditions(i)
	var prev conditions
	if !full {
		prev = f.conditions(i - 1)
	}
	nh, nv := len(f.hostIDs), len(f.vmIDs)
	size := 2 * nh
	if full {
		size += nv
	} else {
		size += len(cur.vm) + len(prev.vm) + 64
	}
	out := make([]model.Observation, 0, size)

	for h := range nh {
		out = append(out, model.Observation{
			Source: f.source, Kind: model.KindHost, ID: f.hostIDs[h], Site: f.sites[f.hostSite[h]],
			State: model.StateUp, Attrs: f.hostFacts(h, i, cur.host[h]), TimeGenerated: t,
		})
	}
	for h := range nh {
		state := model.StateUp
		if cur.host[h].serviceDown {
			state = model.StateDown
		}
		out = append(out, model.Observation{
			Source: f.source, Kind: model.KindService, ID: ServiceLibvirtd, Host: f.hostIDs[h],
			Site: f.sites[f.hostSite[h]], State: state, TimeGenerated: t,
		})
	}
	for j := range nv {
		v := cur.vmReport(j, nh)
		if !full && v == prev.vmReport(j, nh) {
			continue
		}
		if v.absent {
			continue
		}
		h := j % nh
		o := model.Observation{
			Source: f.source, Kind: model.KindVM, ID: f.vmIDs[j], Host: f.hostIDs[h], Site: f.sites[f.hostSite[h]],
			State: v.state, Event: v.event, TimeGenerated: t,
		}
		if v.reason != "" {
			// A fresh map per observation: Validate normalises attrs in
			// place, so sharing one would be a data race.
			o.Attrs = map[string]any{model.AttrCrashReason: v.reason}
		}
		out = append(out, o)
	}
	return out
}

// conditions is what the active faults do to the fleet in one period,
// indexed for Step's loops. Only troubled hosts and VMs have entries, so
// a quiet period of 100,000 VMs costs two empty maps.
type conditions struct {
	host map[int]hostCond
	vm   map[int]FaultKind
}

type hostCond struct {
	hw          Hardware // "" when the hardware is healthy
	storageDown bool
	serviceDown bool
}

func (f *Fleet) conditions(i int) conditions {
	c := conditions{host: map[int]hostCond{}, vm: map[int]FaultKind{}}
	for _, p := range f.active(i) {
		if p.Kind.onVM() {
			if old, ok := c.vm[p.vm]; !ok || p.Kind.vmRank() > old.vmRank() {
				c.vm[p.vm] = p.Kind
			}
			continue
		}
		hc := c.host[p.host]
		switch p.Kind {
		case HostHardware:
			hc.hw = p.Hardware
		case StorageUnreachable:
			hc.storageDown = true
		case ServiceDown:
			hc.serviceDown = true
		}
		c.host[p.host] = hc
	}
	return c
}

// vmReport is what a VM reports in a period; comparing two tells whether
// the VM changed.
type vmReport struct {
	absent bool
	state  model.State
	event  string
	reason string
}

func (c conditions) vmReport(j, hosts int) vmReport {
	kind := c.vm[j]
	switch {
	case kind == HeartbeatLoss:
		return vmReport{absent: true}
	case c.host[j%hosts].hw != "":
		return vmReport{state: model.StateCrashed, reason: CrashReasonUnknown}
	case kind == GuestCrash:
		return vmReport{state: model.StateCrashed, reason: CrashReasonPanicked}
	case kind == PlannedMaintenance:
		return vmReport{state: model.StateUnavailable, event: EventPlannedMaintenance}
	case kind == UserRestart:
		return vmReport{state: model.StateUnavailable, event: EventUserRestart}
	}
	return vmReport{state: model.StateRunning}
}

// hostFacts returns host h's hardware facts in period i. Healthy hosts
// carry a little seeded noise (temperature, the odd corrected ECC error),
// as real ones do, so rules are tested against values that are not all
// zero; a failing part shows only in its own fact.
func (f *Fleet) hostFacts(h, i int, c hostCond) map[string]any {
	n := mix(f.seed, saltNoise, uint64(h), uint64(i))
	base := mix(f.seed, saltTemp, uint64(h), 0)
	var corrected, uncorrected, mce, disk float64
	if n%32 == 0 {
		corrected = float64(1 + (n>>8)%2)
	}
	temp := float64(36 + base%10 + (n>>16)%4)
	nicUp, psuOK, network := true, true, true
	switch c.hw {
	case HardwareECC:
		uncorrected = float64(1 + (n>>24)%4)
		corrected += float64(20 + (n>>32)%40)
	case HardwareMCE:
		mce = float64(1 + (n>>24)%3)
	case HardwareDisk:
		disk = float64(25 + (n>>24)%200)
	case HardwareNIC:
		nicUp, network = false, false
	case HardwarePSU:
		psuOK = false
		temp += 12 // the remaining supply and fans run hot
	}
	a := f.hostAlloc[h]
	return map[string]any{
		model.AttrECCCorrected:     box(corrected),
		model.AttrECCUncorrected:   box(uncorrected),
		model.AttrMCE:              box(mce),
		model.AttrDiskErrors:       box(disk),
		model.AttrNICUp:            nicUp,
		model.AttrPSUOK:            psuOK,
		model.AttrTempC:            box(temp),
		model.AttrStorageReachable: !c.storageDown,
		model.AttrNetworkReachable: network,
		model.AttrCPUFree:          box(float64(f.hostVCPUs[h] - a.vcpus)),
		model.AttrMemFreeMB:        float64(f.hostMemMB[h] - a.memMB),
	}
}

// boxed holds small whole numbers already converted to interfaces. Putting
// a float64 in an `any` allocates; a 5,000-host period would do it tens of
// thousands of times for the same few values. Interface values are
// immutable, so sharing them between observations is safe.
var boxed = func() (b [256]any) {
	for i := range b {
		b[i] = float64(i)
	}
	return b
}()

func box(v float64) any {
	if i := int(v); float64(i) == v && i >= 0 && i < len(boxed) {
		return boxed[i]
	}
	return v
}
