package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// conn is one connection to a libvirtd, with only what the collector uses.
// A method that fails because the daemon went away or stopped answering
// leaves the connection closed; Disconnected then reports it.
type conn interface {
	// Domains lists every domain with its state and reason.
	Domains() ([]domain, error)
	// Events subscribes to lifecycle events. The channel is closed when the
	// connection ends, and must be read until then.
	Events(ctx context.Context) (<-chan golibvirt.DomainEventLifecycleMsg, error)
	// Disconnected is closed when the connection is lost or closed.
	Disconnected() <-chan struct{}
	// Close ends the connection.
	Close()
}

// domain is one domain of a listing.
type domain struct {
	name          string
	state, reason int32
	// service is the domain's <vmtriage:service> metadata ("" when it has
	// none), read only when the target asks for metadata; metaErr says why
	// it could not be read.
	service string
	metaErr error
}

// dialFunc opens a connection to a target's libvirtd; every step of it is
// bounded by timeout.
type dialFunc func(t *target, timeout time.Duration) (conn, error)

// errTimeout marks a call that got no answer in time.
var errTimeout = errors.New("no answer in time; connection closed")

// DefaultSocket is the system libvirtd's socket, used for URIs without a
// host and without ?socket=.
const DefaultSocket = "/run/libvirt/libvirt-sock"

// parseURI checks a libvirt URI and returns it with the URI the daemon is
// asked to open once connected. A bare absolute path names a local socket
// of the system QEMU driver.
func parseURI(raw string) (u *url.URL, remote golibvirt.ConnectURI, err error) {
	if strings.HasPrefix(raw, "/") {
		u = &url.URL{Scheme: "qemu+unix", Path: "/system", RawQuery: url.Values{"socket": {raw}}.Encode()}
		return u, golibvirt.QEMUSystem, nil
	}
	u, err = url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("not a URI: %w", err)
	}
	if u.Scheme == "" {
		return nil, "", errors.New("no driver (want e.g. qemu+tls://host/system, qemu:///system or a socket path)")
	}
	switch transport(u) {
	case "unix":
		if u.Host != "" {
			return nil, "", errors.New("a unix socket URI has no host")
		}
	case "tcp", "tls":
		if u.Hostname() == "" {
			return nil, "", fmt.Errorf("transport %s needs a host", transport(u))
		}
	default:
		return nil, "", fmt.Errorf("transport %q is not supported (unix, tcp or tls)", transport(u))
	}
	if u.User != nil {
		return nil, "", errors.New("user names are not supported in the URI (tcp and tls authenticate the connection, not a user)")
	}
	return u, golibvirt.RemoteURI(u), nil
}

// transport is the part of the scheme after "+": unix by default, or tls
// when a host is named, as libvirt itself decides.
func transport(u *url.URL) string {
	if _, t, ok := strings.Cut(u.Scheme, "+"); ok {
		return t
	}
	if u.Host != "" {
		return "tls"
	}
	return "unix"
}

func dialerFor(u *url.URL, timeout time.Duration) socket.Dialer {
	q := u.Query()
	switch transport(u) {
	case "tcp":
		opts := []dialers.RemoteOption{dialers.WithRemoteTimeout(timeout)}
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(u.Hostname(), opts...)
	case "tls":
		var opts []dialers.TLSOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UseTLSPort(p))
		}
		if p := q.Get("pkipath"); p != "" {
			opts = append(opts, dialers.UsePKIPath(p))
		}
		if q.Get("no_verify") == "1" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		return dialers.NewTLS(u.Hostname(), opts...)
	}
	s := q.Get("socket")
	if s == "" {
		s = DefaultSocket
	}
	return dialers.NewLocal(dialers.WithSocket(s), dialers.WithLocalTimeout(timeout))
}

// dialLibvirt connects to a target's libvirtd with go-libvirt.
func dialLibvirt(t *target, timeout time.Duration) (conn, error) {
	d := &trackingDialer{inner: dialerFor(t.url, timeout), timeout: timeout}
	c := &lvConn{l: golibvirt.NewWithDialer(d), d: d, timeout: timeout, metadata: t.metadata}
	if err := c.guard("connect", func() error { return c.l.ConnectToURI(t.remote) }); err != nil {
		d.close()
		return nil, err
	}
	return c, nil
}

// trackingDialer keeps the connection it made so that a call without an
// answer can be ended by closing it (go-libvirt's RPCs take no deadline),
// and bounds the dial itself (the TLS dialer waits for libvirtd's
// certificate verdict without one).
type trackingDialer struct {
	inner   socket.Dialer
	timeout time.Duration

	mu     sync.Mutex
	nc     net.Conn
	closed bool
}

func (d *trackingDialer) Dial() (net.Conn, error) {
	type result struct {
		nc  net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := d.inner.Dial()
		ch <- result{nc, err}
	}()
	t := time.NewTimer(d.timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.closed {
			r.nc.Close()
			return nil, fmt.Errorf("dial: %w", errTimeout)
		}
		d.nc = r.nc
		return r.nc, nil
	case <-t.C:
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("dial: %w", errTimeout)
	}
}

// close closes the connection under go-libvirt's feet; its reader sees the
// error, fails every pending call and closes Disconnected.
func (d *trackingDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.nc != nil {
		d.nc.Close()
	}
}

// lvConn is a go-libvirt connection whose every call is bounded.
type lvConn struct {
	l       *golibvirt.Libvirt
	d       *trackingDialer
	timeout time.Duration
	// metadata makes Domains read each domain's vmtriage metadata.
	metadata bool
}

// guard runs call and closes the connection when it has not returned
// within the timeout, which makes it return.
func (c *lvConn) guard(op string, call func() error) error {
	t := time.AfterFunc(c.timeout, c.d.close)
	err := call()
	if !t.Stop() {
		return fmt.Errorf("%s: %w (after %s)", op, errTimeout, c.timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (c *lvConn) Domains() ([]domain, error) {
	var recs []golibvirt.DomainStatsRecord
	err := c.guard("get all domain stats", func() (err error) {
		recs, err = c.l.ConnectGetAllDomainStats(nil, uint32(golibvirt.DomainStatsState), 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]domain, 0, len(recs))
	for i := range recs {
		d := domain{name: recs[i].Dom.Name, state: -1}
		for _, p := range recs[i].Params {
			switch p.Field {
			case "state.state":
				d.state = intParam(p.Value)
			case "state.reason":
				d.reason = intParam(p.Value)
			}
		}
		if c.metadata {
			if err := c.readMetadata(recs[i].Dom, &d); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// readMetadata fills d.service from the domain's element in the
// MetadataURI namespace. Only a call without an answer in time is an
// error (the connection is then closed); a domain without the element has
// no service, and any other failure is kept in d.metaErr.
func (c *lvConn) readMetadata(dom golibvirt.Domain, d *domain) error {
	var raw string
	err := c.guard("get domain metadata", func() (err error) {
		raw, err = c.l.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{MetadataURI}, 0)
		return err
	})
	var lerr golibvirt.Error
	switch {
	case err == nil:
		d.service, d.metaErr = parseServiceMetadata(raw)
	case errors.Is(err, errTimeout):
		return err
	case errors.As(err, &lerr) && lerr.Code == uint32(golibvirt.ErrNoDomainMetadata):
	default:
		d.metaErr = err
	}
	return nil
}

// intParam reads an integer typed parameter; -1 when it is not one.
func intParam(v golibvirt.TypedParamValue) int32 {
	switch x := v.I.(type) {
	case int32:
		return x
	case uint32:
		return int32(x)
	case int64:
		return int32(x)
	case uint64:
		return int32(x)
	}
	return -1
}

func (c *lvConn) Events(ctx context.Context) (<-chan golibvirt.DomainEventLifecycleMsg, error) {
	var ch <-chan golibvirt.DomainEventLifecycleMsg
	err := c.guard("subscribe to lifecycle events", func() (err error) {
		ch, err = c.l.LifecycleEvents(ctx)
		return err
	})
	return ch, err
}

func (c *lvConn) Disconnected() <-chan struct{} { return c.l.Disconnected() }

func (c *lvConn) Close() {
	// A polite close first; a daemon that does not answer gets its socket
	// closed by the guard.
	_ = c.guard("close", c.l.Disconnect)
	c.d.close()
}
