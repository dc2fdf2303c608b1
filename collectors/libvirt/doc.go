// Package libvirt watches the VMs of KVM/QEMU hosts without any agent inside
// them, through each host's libvirtd, and turns what it sees into
// observations.
//
// For each configured URI (qemu+tcp://, qemu+tls://, a unix socket, or any
// libvirt URI the daemon serves, such as test:///path.xml) the collector
// keeps one connection. While it is up it is subscribed to lifecycle events,
// so a VM that crashes, is paused or is destroyed is reported at once, and
// every Interval a full listing (one ConnectGetAllDomainStats call per host)
// reports the state of every domain, which catches any event that was
// missed and proves to the stopped-reporting rule that the VMs are still
// there.
//
// Domain states map onto VM states: running and blocked are running,
// paused and pmsuspended are paused, shutoff is shutoff, except shutoff
// with reason crashed or failed, which is crashed (libvirt's default
// <on_crash>destroy turns a guest crash into exactly that), and crashed is
// crashed; a crashed VM carries attrs.crash_reason (crashed, failed,
// panicked, crashloaded, unknown).
//
// The libvirtd connection itself is a service component of the host: each
// listing carries a "libvirtd" service observation, up while the daemon
// answers and down when it cannot be reached or stops answering. So a
// stopped libvirtd is one service incident for the host, not a crash of
// each of its VMs: while the daemon is down nothing is said about the VMs.
//
// A lost connection is retried with exponential backoff (MinBackoff to
// MaxBackoff, waited through the injected Wait so tests do not sleep), and
// the lifecycle events are subscribed again on the new connection, since
// go-libvirt registers nothing again by itself. libvirt RPCs take no
// context and have no timeout; every call made here is guarded by
// RPCTimeout, after which the connection is closed, which fails the call
// and starts a reconnection.
package libvirt
