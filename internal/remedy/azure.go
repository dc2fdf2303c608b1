package remedy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/retryafter"
)

// Defaults of AzureOptions.
const (
	// DefaultAzureComputeAPIVersion is the Microsoft.Compute API version.
	DefaultAzureComputeAPIVersion = "2024-07-01"
	// DefaultAzurePollInterval is the wait between polls of a long-running
	// operation when Azure gives no Retry-After.
	DefaultAzurePollInterval = 10 * time.Second
	// DefaultAzureMaxWait bounds how long one operation is polled; it stays
	// under the executor's DefaultStepTimeout so that the actuator, not the
	// step's deadline, reports a slow operation.
	DefaultAzureMaxWait = 9 * time.Minute
	// DefaultAzureMaxAttempts bounds the tries of one request answered 429.
	DefaultAzureMaxAttempts = 4
)

// AzureOptions configure an Azure actuator.
type AzureOptions struct {
	// Subscriptions whose VM lists are searched for a VM by name.
	Subscriptions []string
	// VMs maps VM names to resource ids; a VM found here is not searched for.
	VMs map[string]string
	// Endpoint is the Resource Manager endpoint (default
	// https://management.azure.com).
	Endpoint string
	// Token returns the bearer token (e.g. azurehealth.NewTokenSource).
	Token func(ctx context.Context) (string, error)
	// APIVersion of Microsoft.Compute (default DefaultAzureComputeAPIVersion).
	APIVersion string
	// PollInterval, MaxWait and MaxAttempts: see the Default constants.
	PollInterval time.Duration
	MaxWait      time.Duration
	MaxAttempts  int
	// Client is the HTTP client (default one with a 30s timeout).
	Client *http.Client
	// Clock and Wait measure and spend the time between polls and retries
	// (default the real clock and a context-aware sleep).
	Clock clock.Clock
	Wait  func(ctx context.Context, d time.Duration) error
}

// Azure acts through the Resource Manager REST API. A restart is a restart
// of a running VM or a start of a stopped one; a migration is a redeploy:
// Azure moves the VM to a new host of its own choosing (the planned target
// host is not used, since Azure does not let a caller pick one), which is
// how a VM is taken off a failing Azure host. Restarting a service and host
// maintenance are not Azure actions (ErrNotSupported). Every action waits
// for its long-running operation to finish, up to MaxWait.
type Azure struct {
	o AzureOptions
}

var _ Actuator = (*Azure)(nil)

// NewAzure checks o and returns an Azure actuator.
func NewAzure(o AzureOptions) (*Azure, error) {
	if o.Endpoint == "" {
		o.Endpoint = "https://management.azure.com"
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("azure actuator: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	if o.Token == nil {
		return nil, errors.New("azure actuator: a token source is required")
	}
	if len(o.Subscriptions) == 0 && len(o.VMs) == 0 {
		return nil, errors.New("azure actuator: subscriptions or a VM mapping are required")
	}
	for _, s := range o.Subscriptions {
		if s == "" || strings.ContainsAny(s, "/?#% ") {
			return nil, fmt.Errorf("azure actuator: subscription %q is not a subscription id", s)
		}
	}
	if o.APIVersion == "" {
		o.APIVersion = DefaultAzureComputeAPIVersion
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultAzurePollInterval
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultAzureMaxWait
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultAzureMaxAttempts
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Wait == nil {
		o.Wait = azureSleep
	}
	return &Azure{o: o}, nil
}

func azureSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// AzureError is a refusal of the Resource Manager API or a failed
// long-running operation.
type AzureError struct {
	Op     string
	Status int
	// Code and Message are Azure's own, if it gave them.
	Code    string
	Message string
}

func (e *AzureError) Error() string {
	s := e.Op + ": azure"
	if e.Status != 0 {
		s += fmt.Sprintf(" answered %d", e.Status)
	} else {
		s += " reported failure"
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

type azureErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// send makes one request to a full URL, retrying 429 answers after their
// Retry-After. It returns the answer's headers, status and body.
func (a *Azure) send(ctx context.Context, op, method, u string) (http.Header, int, []byte, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%s: %w", op, err)
		}
		tok, err := a.o.Token(ctx)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%s: get a token: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		resp, err := a.o.Client.Do(req)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%s: %w", op, err)
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && attempt < a.o.MaxAttempts {
			d := retryafter.Parse(resp.Header, a.o.Clock.Now(), azureMaxRetryAfter)
			if d == 0 {
				d = time.Duration(attempt) * time.Second
			}
			if err := a.o.Wait(ctx, d); err != nil {
				return nil, 0, nil, fmt.Errorf("%s: %w", op, err)
			}
			continue
		}
		if resp.StatusCode >= 300 {
			e := &AzureError{Op: op, Status: resp.StatusCode}
			var b azureErrorBody
			if json.Unmarshal(raw, &b) == nil {
				e.Code, e.Message = b.Error.Code, firstLineOf(b.Error.Message)
			}
			return nil, 0, nil, e
		}
		return resp.Header, resp.StatusCode, raw, nil
	}
}

// azureMaxRetryAfter caps how long a throttled Azure call waits.
const azureMaxRetryAfter = 5 * time.Minute

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// resourceID finds the resource id of the VM named name: from the mapping,
// else from the subscriptions' VM lists (exactly one match, any case).
func (a *Azure) resourceID(ctx context.Context, name string) (string, error) {
	if id, ok := a.o.VMs[name]; ok {
		return id, nil
	}
	var found []string
	for _, sub := range a.o.Subscriptions {
		next := a.o.Endpoint + "/subscriptions/" + url.PathEscape(sub) +
			"/providers/Microsoft.Compute/virtualMachines?api-version=" + url.QueryEscape(a.o.APIVersion)
		for pages := 0; next != "" && pages < 1000; pages++ {
			if err := a.sameEndpoint(next); err != nil {
				return "", fmt.Errorf("find vm %s: %w", name, err)
			}
			_, _, raw, err := a.send(ctx, "find vm "+name, http.MethodGet, next)
			if err != nil {
				return "", err
			}
			var page struct {
				Value []struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"value"`
				NextLink string `json:"nextLink"`
			}
			if err := json.Unmarshal(raw, &page); err != nil {
				return "", fmt.Errorf("find vm %s: decode the VM list: %w", name, err)
			}
			for _, v := range page.Value {
				if strings.EqualFold(v.Name, name) && v.ID != "" {
					found = append(found, v.ID)
				}
			}
			next = page.NextLink
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("find vm %s: no such VM in subscriptions %s", name, strings.Join(a.o.Subscriptions, ", "))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("find vm %s: %d VMs have that name (%s); map it in the options", name, len(found), strings.Join(found, ", "))
}

// sameEndpoint refuses links (nextLink, operation URLs) that point away
// from the configured endpoint, so the bearer token is never sent elsewhere.
func (a *Azure) sameEndpoint(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("link %q is not a URL", link)
	}
	ep, _ := url.Parse(a.o.Endpoint)
	if !strings.EqualFold(u.Host, ep.Host) || u.Scheme != ep.Scheme {
		return fmt.Errorf("link %q leaves %s", link, a.o.Endpoint)
	}
	return nil
}

// action posts one VM action (restart, start, redeploy) and waits for it.
func (a *Azure) action(ctx context.Context, vm, action string) error {
	id, err := a.resourceID(ctx, vm)
	if err != nil {
		return err
	}
	op := action + " vm " + vm
	h, status, _, err := a.send(ctx, op, http.MethodPost,
		a.o.Endpoint+id+"/"+action+"?api-version="+url.QueryEscape(a.o.APIVersion))
	if err != nil {
		return err
	}
	if status != http.StatusAccepted {
		return nil // 200: done already
	}
	return a.await(ctx, op, h)
}

// await polls a long-running operation (Azure-AsyncOperation, else
// Location) until it ends or MaxWait passes.
func (a *Azure) await(ctx context.Context, op string, h http.Header) error {
	poll, async := h.Get("Azure-AsyncOperation"), true
	if poll == "" {
		poll, async = h.Get("Location"), false
	}
	if poll == "" {
		return nil // accepted with nothing to follow
	}
	if err := a.sameEndpoint(poll); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	deadline := a.o.Clock.Now().Add(a.o.MaxWait)
	for {
		d := retryafter.Parse(h, a.o.Clock.Now(), azureMaxRetryAfter)
		if d == 0 {
			d = a.o.PollInterval
		}
		if !a.o.Clock.Now().Add(d).Before(deadline) {
			return fmt.Errorf("%s: still running after %s; gave up waiting (it may yet finish)", op, a.o.MaxWait)
		}
		if err := a.o.Wait(ctx, d); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		var status int
		var raw []byte
		var err error
		h, status, raw, err = a.send(ctx, op+": poll", http.MethodGet, poll)
		if err != nil {
			return err
		}
		if !async {
			if status == http.StatusAccepted {
				continue
			}
			return nil
		}
		var st struct {
			Status string `json:"status"`
			azureErrorBody
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("%s: decode the operation status: %w", op, err)
		}
		switch strings.ToLower(st.Status) {
		case "succeeded":
			return nil
		case "failed", "canceled", "cancelled":
			return &AzureError{Op: op, Code: st.Error.Code, Message: firstLineOf(st.Status + ": " + st.Error.Message)}
		}
	}
}

// running reports whether the VM's power state is running (or starting).
func (a *Azure) running(ctx context.Context, vm string) (bool, error) {
	id, err := a.resourceID(ctx, vm)
	if err != nil {
		return false, err
	}
	_, _, raw, err := a.send(ctx, "instance view of vm "+vm, http.MethodGet,
		a.o.Endpoint+id+"/instanceView?api-version="+url.QueryEscape(a.o.APIVersion))
	if err != nil {
		return false, err
	}
	var iv struct {
		Statuses []struct {
			Code string `json:"code"`
		} `json:"statuses"`
	}
	if err := json.Unmarshal(raw, &iv); err != nil {
		return false, fmt.Errorf("instance view of vm %s: %w", vm, err)
	}
	for _, s := range iv.Statuses {
		switch strings.ToLower(s.Code) {
		case "powerstate/running", "powerstate/starting":
			return true, nil
		}
	}
	return false, nil
}

// RestartVM restarts a running VM and starts a stopped or deallocated one.
func (a *Azure) RestartVM(ctx context.Context, t Target) error {
	up, err := a.running(ctx, t.VM)
	if err != nil {
		return err
	}
	if up {
		return a.action(ctx, t.VM, "restart")
	}
	return a.action(ctx, t.VM, "start")
}

// RestartService is not an Azure action.
func (a *Azure) RestartService(_ context.Context, host, service string) error {
	return fmt.Errorf("restart %s on %s: azure: %w", service, host, ErrNotSupported)
}

// MigrateVM redeploys the VM: Azure moves it to a new host of its own
// choosing; to is not used.
func (a *Azure) MigrateVM(ctx context.Context, t Target, _ string) error {
	return a.action(ctx, t.VM, "redeploy")
}

// MigrateNote is the detail of a done migration: the VM went where Azure
// chose, not necessarily to the planned host.
func (a *Azure) MigrateNote() string {
	return "redeployed: Azure chose the new host; the planned target was not used"
}

// HostMaintenance is not an Azure action: Azure hosts are Azure's.
func (a *Azure) HostMaintenance(_ context.Context, host string) error {
	return fmt.Errorf("maintenance of %s: azure manages its hosts: %w", host, ErrNotSupported)
}
