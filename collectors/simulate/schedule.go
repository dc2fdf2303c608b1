package simulate

import (
	"math/rand/v2"
	"sort"
)

// window is the length, in periods, of each window of the repeating part of
// the default schedule. Every fault of a window starts and recovers inside
// it, and no host gets two faults in one window, so the faults of a period
// are found from its window alone: no history is kept, and any period can
// be stepped first.
const window = 8

// introSpecs is the opening of the default schedule: after a clean period
// 0, every fault kind within the first five periods, each on its own host,
// so a demo shows them all within minutes and the narration can tell them
// apart. Storage stays unreachable for four periods in a row because rules
// about external storage want several consecutive bad periods.
var introSpecs = []struct {
	kind       FaultKind
	start, dur int
	hw         Hardware
}{
	{HostHardware, 1, 3, HardwareECC},
	{GuestCrash, 1, 2, ""},
	{StorageUnreachable, 2, 4, ""},
	{ServiceDown, 2, 2, ""},
	{PlannedMaintenance, 3, 2, ""},
	{UserRestart, 3, 1, ""},
	{HeartbeatLoss, 4, 3, ""},
}

// durations are the lengths, in periods, the repeating part of the default
// schedule draws from for each kind: long enough for the rules' pending
// windows, short enough to fit a window with a recovery period to spare.
var durations = map[FaultKind][2]int{ // {min, max}
	GuestCrash:         {1, 3},
	HostHardware:       {2, 4},
	StorageUnreachable: {3, 5},
	ServiceDown:        {1, 3},
	PlannedMaintenance: {1, 2},
	UserRestart:        {1, 1},
	HeartbeatLoss:      {2, 3},
}

// Salts keep the seeded streams for different purposes independent.
const (
	saltVMSize = iota + 1
	saltHostSize
	saltIntro
	saltWindow
	saltNoise
	saltTemp
)

// defaultIntro places the opening faults. With fewer hosts (carrying VMs)
// than fault kinds they cannot each have a host of their own, so a fault
// waits for the host that frees up first (its previous fault over and
// recovered); a guest crash then still happens on a healthy host.
func (f *Fleet) defaultIntro() ([]placed, int) {
	rng := rand.New(rand.NewPCG(mix(f.seed, saltIntro, 0, 0), saltIntro))
	hosts := pickDistinct(rng, f.usable, min(len(introSpecs), f.usable))
	free := make([]int, len(hosts)) // first period each host may take a fault
	out := make([]placed, 0, len(introSpecs))
	last := 0
	for _, s := range introSpecs {
		slot := 0
		for k := range free {
			if free[k] < free[slot] {
				slot = k
			}
		}
		start := max(s.start, free[slot])
		p := f.place(rng, s.kind, hosts[slot], start, s.dur, s.hw)
		free[slot] = p.End() + 1 // after its recovery period
		out = append(out, p)
		last = max(last, p.End())
	}
	return out, last + 1
}

// windowOf returns the window of the default schedule period p is in.
func (f *Fleet) windowOf(p int) int {
	if p < f.introLen {
		return 0
	}
	return 1 + (p-f.introLen)/window
}

// windowFaults returns the default schedule's faults of window w, drawn
// from a generator seeded by the fleet's seed and w alone.
func (f *Fleet) windowFaults(w int) []placed {
	if w <= 0 {
		return f.intro
	}
	base := f.introLen + (w-1)*window
	rng := rand.New(rand.NewPCG(mix(f.seed, saltWindow, uint64(w), 0), uint64(w)))
	k := min(2+rng.IntN(3), f.usable)
	hosts := pickDistinct(rng, f.usable, k)
	kinds := FaultKinds()
	out := make([]placed, 0, k)
	for _, h := range hosts {
		kind := kinds[rng.IntN(len(kinds))]
		d := durations[kind]
		dur := d[0] + rng.IntN(d[1]-d[0]+1)
		start := base + rng.IntN(window-dur) // recovers by the window's last period
		var hw Hardware
		if kind == HostHardware {
			hw = hardwares[rng.IntN(len(hardwares))]
		}
		out = append(out, f.place(rng, kind, h, start, dur, hw))
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Start < out[b].Start })
	return out
}

// place puts a fault of the given kind on host h, or on one of its VMs.
func (f *Fleet) place(rng *rand.Rand, kind FaultKind, h, start, dur int, hw Hardware) placed {
	p := placed{
		Fault: Fault{Kind: kind, Target: f.hostIDs[h], Start: start, Duration: dur, Hardware: hw,
			Host: f.hostIDs[h], Site: f.sites[f.hostSite[h]]},
		host: h,
		vm:   -1,
	}
	if kind.onVM() {
		n := len(f.hostIDs)
		count := (len(f.vmIDs) - h + n - 1) / n // VMs h, h+n, h+2n, ...
		p.vm = h + n*rng.IntN(count)
		p.Target = f.vmIDs[p.vm]
	}
	return p
}

// pickDistinct draws k distinct numbers below n. k is at most a handful,
// so drawing again on a repeat beats shuffling a 5,000-host permutation.
func pickDistinct(rng *rand.Rand, n, k int) []int {
	out := make([]int, 0, k)
	for len(out) < k {
		v := rng.IntN(n)
		dup := false
		for _, x := range out {
			dup = dup || x == v
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// active returns the faults in force in period p.
func (f *Fleet) active(p int) []placed {
	if p < 0 {
		return nil
	}
	src := f.faults
	if !f.custom {
		src = f.windowFaults(f.windowOf(p))
	}
	var out []placed
	for _, x := range src {
		if x.Start > p && f.custom {
			break // sorted by start
		}
		if x.Active(p) {
			out = append(out, x)
		}
	}
	return out
}

// ActiveFaults returns the faults in force in period i, in order of start,
// so the demo can narrate what the fleet is going through and tests can
// check what they expect.
func (f *Fleet) ActiveFaults(i int) []Fault {
	return faultsOf(f.active(i))
}

// Schedule returns the faults that start in periods from (inclusive) to to
// (exclusive), in order of start: Schedule(i, i+1) is what gets injected in
// period i. The default schedule is endless, so ask for a bounded range.
func (f *Fleet) Schedule(from, to int) []Fault {
	from = max(from, 0)
	if to <= from {
		return nil
	}
	var out []placed
	if f.custom {
		for _, x := range f.faults {
			if x.Start >= from && x.Start < to {
				out = append(out, x)
			}
		}
		return faultsOf(out)
	}
	for w := f.windowOf(from); w <= f.windowOf(to-1); w++ {
		for _, x := range f.windowFaults(w) {
			if x.Start >= from && x.Start < to {
				out = append(out, x)
			}
		}
	}
	return faultsOf(out)
}

func faultsOf(ps []placed) []Fault {
	if len(ps) == 0 {
		return nil
	}
	out := make([]Fault, len(ps))
	for i, p := range ps {
		out[i] = p.Fault
	}
	return out
}

// mix hashes its inputs into a well-spread 64-bit value (SplitMix64
// finaliser). Per-host, per-period noise comes from here rather than from
// a generator's running state, so any period can be computed on its own.
func mix(seed, salt, a, b uint64) uint64 {
	x := splitmix(seed + salt*0x9e3779b97f4a7c15)
	x = splitmix(x ^ a)
	return splitmix(x ^ b)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
