// Package simulate is a synthetic VM fleet: hosts spread over sites, VMs
// spread over hosts, and a schedule of injected faults. It emits the same
// model.Observation records a real collector would, so `vmtriage demo`,
// the tests and the load generator drive the whole pipeline without any
// platform at hand.
//
// Everything it emits is a pure function of the seed, the options and the
// index of the collection period: the same seed always gives the same
// fleet, the same faults and the same observations, period for period, in
// any order and from any goroutine. That is what lets a test name the exact
// period in which a host fails and its VMs crash, and lets a benchmark
// replay a 100,000-VM period without keeping any history.
//
// Each fault kind is one of the situations vmtriage must tell apart — a
// guest crashing on a healthy host, a host whose hardware fails under its
// VMs, external storage lost for several periods, libvirtd down on healthy
// hardware, a maintenance reboot the platform announced, a restart a user
// asked for, and a VM that simply stops being reported — so the default
// schedule shows each of them early in a demo, then keeps repeating them at
// seeded random.
package simulate
