package libvirt

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/vmtriage/vmtriage/internal/model"
)

// MetadataURI is the XML namespace of vmtriage's element in a domain's
// <metadata>. A domain names its service with
//
//	<metadata>
//	  <vmtriage:service xmlns:vmtriage="https://vmtriage.dev/xmlns/libvirt/1">payments-api</vmtriage:service>
//	</metadata>
//
// (or with a <service> child of any element in the namespace). Write it
// with `virsh metadata DOMAIN --uri https://vmtriage.dev/xmlns/libvirt/1
// --key vmtriage --set '<service>payments-api</service>'`.
const MetadataURI = "https://vmtriage.dev/xmlns/libvirt/1"

// InventorySource is the inventory layer the collector's relations go to.
const InventorySource = "libvirt-metadata"

// InventorySink takes VM → service relations read from domain metadata;
// the state store's ApplyInventory is one.
type InventorySink interface {
	ApplyInventory(ctx context.Context, source string, replace bool, actor string, rels []model.InventoryRelation) (int, error)
}

// maxServiceLen bounds a service name read from metadata.
const maxServiceLen = 128

// parseServiceMetadata reads the service out of the XML libvirt returns
// for vmtriage's metadata element: the element's text when it is
// <service>, else the text of its <service> child.
func parseServiceMetadata(raw string) (string, error) {
	var root struct {
		XMLName xml.Name
		Text    string `xml:",chardata"`
		Service *struct {
			Text string `xml:",chardata"`
		} `xml:"service"`
	}
	if err := xml.Unmarshal([]byte(raw), &root); err != nil {
		return "", fmt.Errorf("metadata is not XML: %w", err)
	}
	var svc string
	switch {
	case root.XMLName.Local == "service":
		svc = root.Text
	case root.Service != nil:
		svc = root.Service.Text
	default:
		return "", fmt.Errorf("metadata element <%s> has no <service>", truncate(root.XMLName.Local, 40))
	}
	svc = strings.TrimSpace(svc)
	switch {
	case svc == "":
		return "", errors.New("metadata <service> is empty")
	case len(svc) > maxServiceLen:
		return "", fmt.Errorf("metadata service %q is longer than %d bytes", truncate(svc, 40), maxServiceLen)
	case strings.IndexFunc(svc, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return "", fmt.Errorf("metadata service %q contains spaces or control characters", truncate(svc, 40))
	}
	return svc, nil
}

// sendInventory states, for every domain of one listing, its service from
// metadata, or none (which hands the VM back to the other sources). The
// layer only changes where a domain's metadata did, so steady listings
// record no history. Failures are logged and counted: the next listing
// tries again.
func (c *Collector) sendInventory(t *target, doms []domain) {
	rels := make([]model.InventoryRelation, 0, len(doms))
	for _, d := range doms {
		if d.metaErr != nil {
			c.m.errors.WithLabelValues("metadata").Inc()
			c.log.Warn("ignoring a domain's vmtriage metadata", "host", t.host, "domain", d.name, "err", d.metaErr)
		}
		if d.name == "" || strings.ContainsAny(d.name, " \t\n") {
			continue
		}
		rels = append(rels, model.InventoryRelation{Kind: "vm", Name: d.name, Field: "service", Value: d.service})
	}
	if len(rels) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.RPCTimeout)
	defer cancel()
	if _, err := c.opts.Inventory.ApplyInventory(ctx, InventorySource, false, "libvirt "+t.host, rels); err != nil {
		c.m.errors.WithLabelValues("inventory").Inc()
		c.log.Warn("could not store domain metadata in the inventory", "host", t.host, "err", err)
	}
}
