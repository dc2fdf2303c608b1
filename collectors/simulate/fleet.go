package simulate

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Defaults applied by New to zero Options fields. They give the size of
// fleet the demo shows: big enough that one VM among many is hard to spot
// by eye, small enough to run on a laptop.
const (
	DefaultVMs    = 1000
	DefaultHosts  = 50
	DefaultSites  = 3
	DefaultPeriod = time.Minute
	DefaultSource = "simulate"
)

// MaxVMs bounds VMs, Hosts and Sites so a typo cannot ask for gigabytes of
// names; it is well above the largest fleet vmtriage is designed for.
const MaxVMs = 10_000_000

// Options configure a Fleet. The zero value is the demo's fleet: 1,000 VMs
// on 50 hosts in 3 sites, one period a minute, the default fault schedule.
type Options struct {
	// Seed picks VM sizes, sensor noise and the default schedule's targets;
	// the same seed gives the same observations, period for period.
	Seed int64
	// VMs, Hosts and Sites size the fleet (defaults 1,000, 50 and 3).
	// VMs go on hosts round-robin (vm-0001 on host-001, vm-0002 on
	// host-002, ...) and hosts on sites likewise, so every host carries
	// about the same load and every site about the same hosts.
	VMs   int
	Hosts int
	Sites int
	// Period is the collection period (default 1m). Observations carry the
	// start of their period as time_generated, aligned like
	// model.PeriodStart so they land in the store's period of the same
	// name.
	Period time.Duration
	// Source is the observations' source name (default "simulate").
	Source string
	// Faults is the schedule of injected faults. Nil selects the built-in
	// schedule, which shows every fault kind within the first periods and
	// then repeats them at seeded random (see Fleet.Schedule). A non-nil
	// slice, even an empty one, is used exactly as given: empty means a
	// quiet fleet.
	Faults []Fault
	// ChangesOnly makes Step report a VM only in the fleet's first period
	// and when what it reports changes (state, event, crash reason, or
	// coming back after a heartbeat loss), to keep a demo light. Hosts and
	// services are reported every period regardless, because rules judge
	// each period's hardware facts. A consumer that needs steady VM
	// reports (to notice heartbeat loss, say) wants this off.
	ChangesOnly bool
	// Start is period 0 of the schedule, aligned down to a period boundary
	// (default: the period Clock is in when New is called, so a demo's
	// faults come in its first minutes).
	Start time.Time
	// Clock is what Run reads the time from (default the wall clock).
	Clock clock.Clock
	// Tick is how often Run looks at Clock (default Period/10), so a new
	// period is emitted soon after it begins even when Run started midway
	// through one. Lower it when Clock is a fake or accelerated clock.
	Tick time.Duration
}

// Fleet is a simulated fleet. It is immutable after New, so Step and the
// listing methods are safe for concurrent use.
type Fleet struct {
	seed        uint64
	source      string
	period      time.Duration
	start       time.Time
	clock       clock.Clock
	tick        time.Duration
	changesOnly bool

	sites     []string
	hostIDs   []string
	hostSite  []int32 // index into sites
	hostVCPUs []int64 // capacity
	hostMemMB []int64 // capacity
	hostAlloc []alloc // allocated to VMs
	vmIDs     []string
	vmVCPUs   []int32
	vmMemMB   []int32

	// usable is how many hosts carry at least one VM (hosts 0..usable-1,
	// by round-robin placement); the default schedule picks only those so
	// every injected fault has something to show.
	usable int

	custom   bool     // Options.Faults was given
	faults   []placed // the given schedule, sorted by start
	intro    []placed // default schedule: the opening window
	introLen int      // periods in the opening window
}

type alloc struct{ vcpus, memMB int64 }

// New builds the fleet described by opts. It fails on sizes that make no
// sense and on a schedule that names targets the fleet does not have or
// kinds it does not know, listing every problem.
func New(opts Options) (*Fleet, error) {
	var problems []string
	for _, c := range []struct {
		name string
		v    *int
		def  int
	}{{"vms", &opts.VMs, DefaultVMs}, {"hosts", &opts.Hosts, DefaultHosts}, {"sites", &opts.Sites, DefaultSites}} {
		switch {
		case *c.v == 0:
			*c.v = c.def
		case *c.v < 0:
			problems = append(problems, fmt.Sprintf("%s %d is negative", c.name, *c.v))
		case *c.v > MaxVMs:
			problems = append(problems, fmt.Sprintf("%s %d is more than %d", c.name, *c.v, MaxVMs))
		}
	}
	switch {
	case opts.Period == 0:
		opts.Period = DefaultPeriod
	case opts.Period < 0:
		problems = append(problems, fmt.Sprintf("period %s is negative", opts.Period))
	}
	if opts.Tick < 0 {
		problems = append(problems, fmt.Sprintf("tick %s is negative", opts.Tick))
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("simulated fleet options: %s", strings.Join(problems, "; "))
	}
	if opts.Tick == 0 {
		opts.Tick = max(opts.Period/10, time.Millisecond)
	}
	if opts.Start.IsZero() {
		opts.Start = opts.Clock.Now()
	}

	f := &Fleet{
		seed:        uint64(opts.Seed),
		source:      opts.Source,
		period:      opts.Period,
		start:       model.PeriodStart(opts.Start, opts.Period),
		clock:       opts.Clock,
		tick:        opts.Tick,
		changesOnly: opts.ChangesOnly,
		usable:      min(opts.Hosts, opts.VMs),
	}
	// A source name with spaces would make every observation invalid;
	// better to say so once, here.
	probe := model.Observation{Source: f.source, Kind: model.KindHost, ID: "probe", TimeGenerated: f.start}
	if err := probe.Validate(f.start); err != nil {
		return nil, fmt.Errorf("simulated fleet options: source: %w", err)
	}
	f.build(opts.VMs, opts.Hosts, opts.Sites)

	if opts.Faults == nil {
		f.intro, f.introLen = f.defaultIntro()
		return f, nil
	}
	f.custom = true
	var errs []error
	for i, in := range opts.Faults {
		p, err := f.resolve(i, in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.faults = append(f.faults, p)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("simulated fleet schedule: %w", errors.Join(errs...))
	}
	sort.SliceStable(f.faults, func(a, b int) bool { return f.faults[a].Start < f.faults[b].Start })
	return f, nil
}

// build names everything and sizes VMs and hosts. Names are zero-padded to
// a common width so that sorting by name sorts by number, at any size.
func (f *Fleet) build(vms, hosts, sites int) {
	f.sites = make([]string, sites)
	for i := range f.sites {
		f.sites[i] = "pod-" + letters(i)
	}
	hw := max(3, len(strconv.Itoa(hosts)))
	f.hostIDs = make([]string, hosts)
	f.hostSite = make([]int32, hosts)
	f.hostVCPUs = make([]int64, hosts)
	f.hostMemMB = make([]int64, hosts)
	f.hostAlloc = make([]alloc, hosts)
	for h := range f.hostIDs {
		f.hostIDs[h] = pad("host-", h+1, hw)
		f.hostSite[h] = int32(h % sites)
	}
	vw := max(4, len(strconv.Itoa(vms)))
	f.vmIDs = make([]string, vms)
	f.vmVCPUs = make([]int32, vms)
	f.vmMemMB = make([]int32, vms)
	for j := range f.vmIDs {
		f.vmIDs[j] = pad("vm-", j+1, vw)
		r := mix(f.seed, saltVMSize, uint64(j), 0)
		vcpus := vmSizes[r%uint64(len(vmSizes))]
		memPerCPU := int32(2048) << ((r >> 8) % 2) // 2 or 4 GiB per vCPU
		f.vmVCPUs[j], f.vmMemMB[j] = vcpus, vcpus*memPerCPU
		a := &f.hostAlloc[j%hosts]
		a.vcpus += int64(vcpus)
		a.memMB += int64(vcpus * memPerCPU)
	}
	// Hosts are sized to hold their VMs with headroom, in the steps real
	// servers come in, so cpu_free and mem_free_mb are never negative and
	// differ from host to host.
	for h := range f.hostIDs {
		a := f.hostAlloc[h]
		extra := int64(mix(f.seed, saltHostSize, uint64(h), 0) % 3)
		f.hostVCPUs[h] = roundUp(a.vcpus+a.vcpus/4+8, 16) + 16*extra
		f.hostMemMB[h] = roundUp(a.memMB+a.memMB/4+16384, 65536) + 65536*extra
	}
}

func roundUp(v, step int64) int64 { return (v + step - 1) / step * step }

// vmSizes are the vCPU counts VMs are drawn from: mostly small, with a tail
// of big ones, as real fleets have.
var vmSizes = []int32{1, 1, 2, 2, 2, 4, 4, 8}

func pad(prefix string, n, width int) string {
	s := strconv.Itoa(n)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return prefix + s
}

// letters names site i as a, b, ..., z, aa, ab, ... (bijective base 26).
func letters(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('a' + (i-1)%26)}, b...)
	}
	return string(b)
}

func (f *Fleet) vmIndex(id string) (int, bool) {
	return indexOf(id, "vm-", f.vmIDs)
}

func (f *Fleet) hostIndex(id string) (int, bool) {
	return indexOf(id, "host-", f.hostIDs)
}

func indexOf(id, prefix string, names []string) (int, bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || n > len(names) || names[n-1] != id {
		return 0, false
	}
	return n - 1, true
}

// VM describes one simulated VM.
type VM struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	Site string `json:"site"`
	// VCPUs and MemoryMB are the VM's size, counted against its host's
	// capacity in cpu_free and mem_free_mb.
	VCPUs    int `json:"vcpus"`
	MemoryMB int `json:"memory_mb"`
}

// Host describes one simulated host and what it carries.
type Host struct {
	ID   string `json:"id"`
	Site string `json:"site"`
	// VCPUs and MemoryMB are the host's capacity.
	VCPUs    int `json:"vcpus"`
	MemoryMB int `json:"memory_mb"`
	// VMs lists the VMs placed on the host, in name order.
	VMs []string `json:"vms"`
}

// VMs lists every VM, in name order.
func (f *Fleet) VMs() []VM {
	out := make([]VM, len(f.vmIDs))
	for j := range out {
		h := j % len(f.hostIDs)
		out[j] = VM{ID: f.vmIDs[j], Host: f.hostIDs[h], Site: f.sites[f.hostSite[h]], VCPUs: int(f.vmVCPUs[j]), MemoryMB: int(f.vmMemMB[j])}
	}
	return out
}

// Hosts lists every host with its VMs, in name order.
func (f *Fleet) Hosts() []Host {
	out := make([]Host, len(f.hostIDs))
	for h := range out {
		out[h] = Host{ID: f.hostIDs[h], Site: f.sites[f.hostSite[h]], VCPUs: int(f.hostVCPUs[h]), MemoryMB: int(f.hostMemMB[h]), VMs: f.vmsOn(h)}
	}
	return out
}

// vmsOn lists the VMs of host h; round-robin placement puts VM j on host
// j mod hosts.
func (f *Fleet) vmsOn(h int) []string {
	var out []string
	for j := h; j < len(f.vmIDs); j += len(f.hostIDs) {
		out = append(out, f.vmIDs[j])
	}
	return out
}

// Sites lists the sites, in name order.
func (f *Fleet) Sites() []string { return append([]string(nil), f.sites...) }

// Period returns the collection period.
func (f *Fleet) Period() time.Duration { return f.period }

// Start returns the start of period 0.
func (f *Fleet) Start() time.Time { return f.start }

// Index returns the index of the period t falls in; periods before Start
// have negative indexes (and no faults).
func (f *Fleet) Index(t time.Time) int {
	d := t.Sub(f.start)
	i := int(d / f.period)
	if d < 0 && d%f.period != 0 {
		i--
	}
	return i
}

// PeriodStart returns the start of period i, the time_generated of the
// observations Step emits for it.
func (f *Fleet) PeriodStart(i int) time.Time {
	return f.start.Add(time.Duration(i) * f.period)
}
