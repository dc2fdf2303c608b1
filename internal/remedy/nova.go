package remedy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NovaOptions configure a Nova actuator.
type NovaOptions struct {
	// URL is the compute endpoint, project included
	// ("https://nova.example:8774/v2.1").
	URL string
	// Token returns the Keystone token sent as X-Auth-Token; it is called
	// for every request, so it may refresh one.
	Token func(ctx context.Context) (string, error)
	// Client is the HTTP client (default one with a 30s timeout).
	Client *http.Client
}

// Nova acts through OpenStack's compute API (microversion 2.53): a restart
// is a hard reboot (os-start for a stopped server), a migration is a live
// migration to the named host with block migration chosen by Nova, and
// host maintenance disables the host's nova-compute service so the
// scheduler places nothing new on it. Servers are found by name.
type Nova struct {
	o NovaOptions
}

var _ Actuator = (*Nova)(nil)

// novaMicroversion is the compute API version every request asks for:
// 2.53 addresses services by UUID, which disabling one needs.
const novaMicroversion = "compute 2.53"

// NewNova returns a Nova actuator.
func NewNova(o NovaOptions) (*Nova, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nova actuator: %q is not an http(s) URL", o.URL)
	}
	if o.Token == nil {
		return nil, errors.New("nova actuator: a token source is required")
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Nova{o: o}, nil
}

// NovaError is a refusal of the compute API.
type NovaError struct {
	Op     string
	Status int
	// Message is Nova's own explanation, if it gave one.
	Message string
}

func (e *NovaError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: nova answered %d: %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("%s: nova answered %d", e.Op, e.Status)
}

// do sends one request and decodes a JSON answer into out (if not nil).
func (n *Nova) do(ctx context.Context, op, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.o.URL+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	tok, err := n.o.Token(ctx)
	if err != nil {
		return fmt.Errorf("%s: get a token: %w", op, err)
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("OpenStack-API-Version", novaMicroversion)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return &NovaError{Op: op, Status: resp.StatusCode, Message: novaMessage(raw)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: decode the answer: %w", op, err)
		}
	}
	return nil
}

// novaMessage digs the message out of Nova's error bodies, which wrap it
// in an object named after the error ({"badRequest": {"message": ...}}).
func novaMessage(raw []byte) string {
	var m map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &m) == nil {
		for _, v := range m {
			if v.Message != "" {
				return v.Message
			}
		}
	}
	return ""
}

type novaServer struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// server finds the server named name (exactly).
func (n *Nova) server(ctx context.Context, name string) (novaServer, error) {
	var out struct {
		Servers []novaServer `json:"servers"`
	}
	q := url.Values{"name": {"^" + regexpQuote(name) + "$"}, "all_tenants": {"1"}}
	if err := n.do(ctx, "find server "+name, http.MethodGet, "/servers/detail?"+q.Encode(), nil, &out); err != nil {
		return novaServer{}, err
	}
	var found []novaServer
	for _, s := range out.Servers {
		if s.Name == name {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return novaServer{}, fmt.Errorf("find server %s: nova has no server of that name", name)
	case 1:
		return found[0], nil
	}
	return novaServer{}, fmt.Errorf("find server %s: nova has %d servers of that name; act on it by hand", name, len(found))
}

// regexpQuote escapes what Nova's name filter (a regular expression)
// would read as syntax.
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RestartVM hard-reboots the server, or starts it when it is stopped.
func (n *Nova) RestartVM(ctx context.Context, t Target) error {
	s, err := n.server(ctx, t.VM)
	if err != nil {
		return err
	}
	body := map[string]any{"reboot": map[string]string{"type": "HARD"}}
	if s.Status == "SHUTOFF" {
		body = map[string]any{"os-start": nil}
	}
	return n.do(ctx, "restart "+t.VM, http.MethodPost, "/servers/"+url.PathEscape(s.ID)+"/action", body, nil)
}

// MigrateVM live-migrates the server to the host to.
func (n *Nova) MigrateVM(ctx context.Context, t Target, to string) error {
	s, err := n.server(ctx, t.VM)
	if err != nil {
		return err
	}
	body := map[string]any{"os-migrateLive": map[string]any{"host": to, "block_migration": "auto"}}
	return n.do(ctx, fmt.Sprintf("migrate %s to %s", t.VM, to), http.MethodPost, "/servers/"+url.PathEscape(s.ID)+"/action", body, nil)
}

// HostMaintenance disables the host's nova-compute service, with a reason
// saying who did it.
func (n *Nova) HostMaintenance(ctx context.Context, host string) error {
	var out struct {
		Services []struct {
			ID     string `json:"id"`
			Host   string `json:"host"`
			Status string `json:"status"`
		} `json:"services"`
	}
	q := url.Values{"binary": {"nova-compute"}, "host": {host}}
	op := "disable nova-compute on " + host
	if err := n.do(ctx, op, http.MethodGet, "/os-services?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if len(out.Services) != 1 || out.Services[0].Host != host {
		return fmt.Errorf("%s: nova lists %d nova-compute services for that host", op, len(out.Services))
	}
	if out.Services[0].Status == "disabled" {
		return nil
	}
	body := map[string]string{"status": "disabled", "disabled_reason": "vmtriage: evacuating a failing host"}
	return n.do(ctx, op, http.MethodPut, "/os-services/"+url.PathEscape(out.Services[0].ID), body, nil)
}

// RestartService is not something the compute API does.
func (n *Nova) RestartService(_ context.Context, host, service string) error {
	return fmt.Errorf("restart %s on %s: the compute API cannot restart host services: %w", service, host, ErrNotSupported)
}
