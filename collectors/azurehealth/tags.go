package azurehealth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"unicode"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Defaults of the tag reading applied by New.
const (
	// DefaultServiceTag is the tag naming a VM's service.
	DefaultServiceTag = "service"
	// DefaultTagsEvery reads tags on every tenth poll: tags change far
	// more slowly than health.
	DefaultTagsEvery = 10
	// ComputeAPIVersion is the Microsoft.Compute API version of the VM
	// listing the tags are read from.
	ComputeAPIVersion = "2024-07-01"
	// InventorySource is the inventory layer the tags go to.
	InventorySource = "azure-tags"
)

// maxServiceLen bounds a service name read from a tag.
const maxServiceLen = 128

// InventorySink takes VM → service relations read from the VMs' tags; the
// state store's ApplyInventory is one.
type InventorySink interface {
	ApplyInventory(ctx context.Context, source string, replace bool, actor string, rels []model.InventoryRelation) (int, error)
}

// errNoTag marks a VM without the service tag.
var errNoTag = errors.New("untagged")

// wireVM is a virtualMachines listing entry, reduced to what tags need.
type wireVM struct {
	ID   string            `json:"id"`
	Tags map[string]string `json:"tags"`
}

// pollTags lists every subscription's VMs and makes their service tags
// the whole azure-tags layer. A VM without the tag, or whose tag is not a
// usable service name, is left out, logged and counted (kind "tags"). The
// layer is replaced only when every subscription was listed completely, so
// a failed page never drops relations.
func (c *Collector) pollTags(ctx context.Context) error {
	var (
		rels []model.InventoryRelation
		errs []error
		seen = map[string]bool{}
	)
	for _, sub := range c.opts.Subscriptions {
		q := url.Values{"api-version": {ComputeAPIVersion}}
		first := c.opts.Endpoint + "/subscriptions/" + url.PathEscape(sub) +
			"/providers/Microsoft.Compute/virtualMachines?" + q.Encode()
		err := c.eachPage(ctx, first, func(n int, p page) {
			for i, raw := range p.Value {
				name, svc, err := c.vmService(raw)
				if err != nil {
					c.m.errors.WithLabelValues("tags").Inc()
					level := slog.LevelWarn
					if errors.Is(err, errNoTag) {
						level = slog.LevelDebug // common, and repeated every tag poll
					}
					c.log.Log(ctx, level, "skipping a VM's service tag", "subscription", sub, "page", n, "vm", i, "err", err)
					continue
				}
				if name == "" || seen[name] {
					continue // not a VM, or listed twice: the first wins
				}
				seen[name] = true
				rels = append(rels, model.InventoryRelation{Kind: "vm", Name: name, Field: "service", Value: svc})
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("list VM tags of subscription %s: %w", sub, err))
		}
	}
	if len(errs) > 0 {
		c.m.errors.WithLabelValues("tags").Inc()
		return fmt.Errorf("azure tags not stored (the listing is incomplete): %w", errors.Join(errs...))
	}
	if _, err := c.opts.Inventory.ApplyInventory(ctx, InventorySource, true, "azure "+c.opts.Source, rels); err != nil {
		c.m.errors.WithLabelValues("inventory").Inc()
		return fmt.Errorf("store azure tags in the inventory: %w", err)
	}
	return nil
}

// vmService reads one listing entry: the VM's name as the health records
// name it, and its service tag. It returns an empty name, and no error,
// for an entry that is not a VM.
func (c *Collector) vmService(raw json.RawMessage) (name, svc string, err error) {
	var w wireVM
	if err := json.Unmarshal(raw, &w); err != nil {
		return "", "", fmt.Errorf("decode VM: %w", err)
	}
	_, name, err = vmName(w.ID)
	if errors.Is(err, errNotVM) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	if err := usableName(name); err != nil {
		return "", "", err
	}
	found := false
	for k, v := range w.Tags {
		if strings.EqualFold(k, c.opts.ServiceTag) {
			svc, found = v, true
			break
		}
	}
	svc = strings.TrimSpace(svc)
	switch {
	case !found:
		return "", "", fmt.Errorf("VM %s has no %q tag: %w", name, c.opts.ServiceTag, errNoTag)
	case svc == "":
		return "", "", fmt.Errorf("VM %s: tag %q is empty", name, c.opts.ServiceTag)
	case len(svc) > maxServiceLen:
		return "", "", fmt.Errorf("VM %s: tag %q value %q is longer than %d bytes", name, c.opts.ServiceTag, clip(svc, 40), maxServiceLen)
	case strings.IndexFunc(svc, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return "", "", fmt.Errorf("VM %s: tag %q value %q contains spaces or control characters", name, c.opts.ServiceTag, clip(svc, 40))
	}
	return name, svc, nil
}
