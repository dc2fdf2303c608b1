package store

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is an in-process Redis (miniredis) listening on a real TCP port
// of 127.0.0.1, for the demo and for running without a Redis server. It
// keeps everything in memory: state is gone when it closes. Keys expire in
// real time, like on a real server.
type Embedded struct {
	m *miniredis.Miniredis
}

// StartEmbedded starts an embedded Redis on a free port of 127.0.0.1.
func StartEmbedded() (*Embedded, error) {
	m := miniredis.NewMiniRedis()
	// Without ClockTTL, miniredis only expires keys when told to.
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return &Embedded{m: m}, nil
}

// Addr returns the host:port the embedded Redis listens on.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL returns a redis:// URL for Connect.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() + "/0" }

// Close stops the server and drops its data.
func (e *Embedded) Close() { e.m.Close() }
