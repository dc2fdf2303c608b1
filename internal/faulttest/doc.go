// Package faulttest holds vmtriage's fault tests: real `vmtriage serve`
// processes on loopback, sharing a redis-server the tests start on a spare
// port, and a fake Slack Web API that records every message. The tests kill
// replicas and Redis mid-run and check that nothing acknowledged is lost and
// nothing is done twice.
//
// They are slow (tens of seconds to a few minutes, bounded by deadlines) and
// need redis-server on the PATH, so they carry the build tag "faults": run
// them with `make faults` (go test -tags faults ./internal/faulttest/).
package faulttest
