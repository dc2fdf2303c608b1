package simulate

import (
	"fmt"
	"strings"
)

// FaultKind names a kind of trouble the simulator injects. Each kind is a
// situation the rules must classify differently, so a schedule that holds
// all of them exercises every path from observation to incident.
type FaultKind string

// The fault kinds. VM faults target a VM; host faults target a host.
const (
	// GuestCrash crashes one VM on a healthy host (crash_reason
	// "panicked"): the guest's own fault, so only that VM should be
	// touched. The VM is running again once the fault ends.
	GuestCrash FaultKind = "guest-crash"
	// HostHardware breaks part of a host (see Hardware). Every VM on the
	// host crashes in the very period the facts turn bad, because the
	// rules decide a crash's cause from the host's state in that same
	// period.
	HostHardware FaultKind = "host-hardware"
	// StorageUnreachable cuts a host off from its external storage
	// (storage_reachable=false) for every period of the fault, so rules
	// that need several consecutive bad periods can be shown firing.
	StorageUnreachable FaultKind = "storage-unreachable"
	// ServiceDown stops libvirtd on a host whose hardware stays healthy:
	// a service to restart, not a host to evacuate.
	ServiceDown FaultKind = "service-down"
	// PlannedMaintenance has the platform announce a maintenance reboot of
	// one VM (EventPlannedMaintenance, state unavailable), so the bot can
	// show it refusing to race the platform's own recovery.
	PlannedMaintenance FaultKind = "planned-maintenance"
	// UserRestart has a user restart one VM (EventUserRestart, state
	// unavailable): an outage the outage books charge to the user.
	UserRestart FaultKind = "user-restart"
	// HeartbeatLoss stops reporting one VM at all for the fault's
	// duration, as when the path from the VM to vmtriage breaks; only a
	// rule about missing reports can notice it.
	HeartbeatLoss FaultKind = "heartbeat-loss"
)

// FaultKinds returns every fault kind, in the order the default schedule
// introduces them. It returns a fresh slice so callers may keep or change it.
func FaultKinds() []FaultKind {
	return []FaultKind{HostHardware, GuestCrash, StorageUnreachable, ServiceDown, PlannedMaintenance, UserRestart, HeartbeatLoss}
}

// onVM reports whether faults of this kind target a VM rather than a host.
func (k FaultKind) onVM() bool {
	switch k {
	case GuestCrash, PlannedMaintenance, UserRestart, HeartbeatLoss:
		return true
	}
	return false
}

func (k FaultKind) known() bool {
	switch k {
	case GuestCrash, HostHardware, StorageUnreachable, ServiceDown, PlannedMaintenance, UserRestart, HeartbeatLoss:
		return true
	}
	return false
}

// vmRank orders VM faults for when a hand-written schedule puts several on
// one VM in the same period: the most drastic one wins, because a VM that is
// not reported at all cannot also be seen restarting.
func (k FaultKind) vmRank() int {
	switch k {
	case HeartbeatLoss:
		return 4
	case GuestCrash:
		return 3
	case PlannedMaintenance:
		return 2
	case UserRestart:
		return 1
	}
	return 0
}

// Hardware is the part of a host that fails in a HostHardware fault. Each
// maps to the host fact a hardware collector would report, so rules can be
// tested against each fact.
type Hardware string

// The host parts that can fail.
const (
	// HardwareECC reports uncorrected memory errors (ecc_uncorrected > 0).
	HardwareECC Hardware = "ecc"
	// HardwareMCE reports machine-check exceptions (mce > 0).
	HardwareMCE Hardware = "mce"
	// HardwareDisk reports local disk I/O errors (disk_errors > 0).
	HardwareDisk Hardware = "disk"
	// HardwareNIC takes the data NICs' link down (nic_up=false), which
	// also makes the external network unreachable (network_reachable=false).
	HardwareNIC Hardware = "nic"
	// HardwarePSU fails a power supply (psu_ok=false).
	HardwarePSU Hardware = "psu"
)

var hardwares = []Hardware{HardwareECC, HardwareMCE, HardwareDisk, HardwareNIC, HardwarePSU}

func (h Hardware) describe() string {
	switch h {
	case HardwareECC:
		return "uncorrected ECC memory errors"
	case HardwareMCE:
		return "machine-check exceptions"
	case HardwareDisk:
		return "disk I/O errors"
	case HardwareNIC:
		return "data NIC link down"
	case HardwarePSU:
		return "power supply failed"
	}
	return string(h)
}

// Events and crash reasons the simulator puts on VM observations. They are
// the names real sources use, so rules written against Azure or libvirt
// records match simulated ones.
const (
	// EventPlannedMaintenance is Azure Resource Health's annotation for a
	// reboot the platform initiated for planned maintenance.
	EventPlannedMaintenance = "VirtualMachineRebootInitiatedForPlannedMaintenance"
	// EventUserRestart is Azure Resource Health's annotation for a restart
	// requested by an authorised user or process.
	EventUserRestart = "VirtualMachineRestarted"
	// CrashReasonPanicked is libvirt's reason for a guest that panicked.
	CrashReasonPanicked = "panicked"
	// CrashReasonUnknown is libvirt's reason when the hypervisor cannot
	// say why a guest died, as when the host's own hardware took it down;
	// the rules must find the cause in the host's facts, not here.
	CrashReasonUnknown = "unknown"
	// ServiceLibvirtd is the one service the simulator reports per host.
	ServiceLibvirtd = "libvirtd"
)

// Fault is one scheduled injection: what goes wrong, where, from which
// collection period and for how many. Periods are counted from the fleet's
// first period (index 0, see Options.Start), so a schedule reads the same
// whatever the wall-clock time of the run.
type Fault struct {
	// Kind is what goes wrong.
	Kind FaultKind `json:"kind"`
	// Target is a VM ID for VM faults and a host ID for host faults.
	Target string `json:"target"`
	// Start is the index of the first period the fault is active in.
	Start int `json:"start"`
	// Duration is how many periods the fault lasts (0 means 1). In period
	// Start+Duration the target reports healthy again.
	Duration int `json:"duration"`
	// Hardware is the failing part of a HostHardware fault (default ECC).
	Hardware Hardware `json:"hardware,omitempty"`
	// Host and Site locate the target. The fleet fills them in, so a
	// narration can name the host a VM fault happens on.
	Host string `json:"host,omitempty"`
	Site string `json:"site,omitempty"`
}

// End returns the first period after the fault: the period in which its
// target recovers.
func (f Fault) End() int { return f.Start + f.periods() }

// Active reports whether the fault is in force in the given period.
func (f Fault) Active(period int) bool { return period >= f.Start && period < f.End() }

func (f Fault) periods() int {
	if f.Duration < 1 {
		return 1
	}
	return f.Duration
}

// Description says in words what the fault does, for the demo's narration
// ("injected: host hardware failure on host-007 ...").
func (f Fault) Description() string {
	n := f.periods()
	where := ""
	if f.Site != "" {
		where = " in " + f.Site
	}
	switch f.Kind {
	case GuestCrash:
		return fmt.Sprintf("guest crash on %s (kernel panic; host %s is healthy), running again after %s", f.Target, orUnknown(f.Host), plural(n))
	case HostHardware:
		hw := f.Hardware
		if hw == "" {
			hw = HardwareECC
		}
		return fmt.Sprintf("host hardware failure on %s%s (%s): its VMs crash in the same period; repaired after %s", f.Target, where, hw.describe(), plural(n))
	case StorageUnreachable:
		return fmt.Sprintf("external storage unreachable from %s%s for %s in a row", f.Target, where, plural(n))
	case ServiceDown:
		return fmt.Sprintf("%s down on %s%s (hardware healthy) for %s", ServiceLibvirtd, f.Target, where, plural(n))
	case PlannedMaintenance:
		return fmt.Sprintf("planned maintenance reboot of %s announced by the platform (host %s), unavailable for %s", f.Target, orUnknown(f.Host), plural(n))
	case UserRestart:
		return fmt.Sprintf("user-initiated restart of %s (host %s), unavailable for %s", f.Target, orUnknown(f.Host), plural(n))
	case HeartbeatLoss:
		return fmt.Sprintf("heartbeat loss: %s (host %s) is not reported at all for %s", f.Target, orUnknown(f.Host), plural(n))
	}
	return fmt.Sprintf("%s on %s for %s", f.Kind, f.Target, plural(n))
}

// String returns the description, so a Fault prints as its narration.
func (f Fault) String() string { return f.Description() }

func plural(n int) string {
	if n == 1 {
		return "1 period"
	}
	return fmt.Sprintf("%d periods", n)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// placed is a fault resolved against the fleet: indexes instead of names,
// so Step finds a fault's host and VM without looking up strings.
type placed struct {
	Fault
	host int
	vm   int // -1 for host faults
}

// resolve checks a hand-written fault against the fleet and fills in its
// host and site. It says everything wrong with it at once.
func (f *Fleet) resolve(i int, in Fault) (placed, error) {
	var problems []string
	if !in.Kind.known() {
		problems = append(problems, fmt.Sprintf("kind %q is not one of %s", in.Kind, joinKinds()))
	}
	if in.Start < 0 {
		problems = append(problems, fmt.Sprintf("start %d is negative", in.Start))
	}
	if in.Duration < 0 {
		problems = append(problems, fmt.Sprintf("duration %d is negative", in.Duration))
	}
	if in.Duration == 0 {
		in.Duration = 1
	}
	if in.Kind == HostHardware && in.Hardware == "" {
		in.Hardware = HardwareECC
	}
	if in.Hardware != "" {
		if in.Kind != HostHardware {
			problems = append(problems, fmt.Sprintf("hardware %q only applies to %s faults", in.Hardware, HostHardware))
		} else if !knownHardware(in.Hardware) {
			problems = append(problems, fmt.Sprintf("hardware %q is not one of ecc, mce, disk, nic, psu", in.Hardware))
		}
	}
	p := placed{Fault: in, host: -1, vm: -1}
	if in.Kind.known() {
		if in.Kind.onVM() {
			if j, ok := f.vmIndex(in.Target); ok {
				p.vm, p.host = j, j%len(f.hostIDs)
			} else {
				problems = append(problems, fmt.Sprintf("target %q is not a VM of this fleet", in.Target))
			}
		} else {
			if h, ok := f.hostIndex(in.Target); ok {
				p.host = h
			} else {
				problems = append(problems, fmt.Sprintf("target %q is not a host of this fleet", in.Target))
			}
		}
	}
	if len(problems) > 0 {
		return placed{}, fmt.Errorf("fault %d (%s on %q): %s", i, in.Kind, in.Target, strings.Join(problems, "; "))
	}
	p.Host = f.hostIDs[p.host]
	p.Site = f.sites[f.hostSite[p.host]]
	return p, nil
}

func knownHardware(h Hardware) bool {
	for _, v := range hardwares {
		if v == h {
			return true
		}
	}
	return false
}

func joinKinds() string {
	var b strings.Builder
	for i, k := range FaultKinds() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(k))
	}
	return b.String()
}
