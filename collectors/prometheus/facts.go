package prometheus

import (
	"maps"
	"slices"

	"github.com/vmtriage/vmtriage/internal/model"
)

// factBool says, for each fact the collector can fill, whether it is a
// health flag (true: value != 0 means healthy) or a number.
var factBool = map[string]bool{
	model.AttrECCCorrected:     false,
	model.AttrECCUncorrected:   false,
	model.AttrMCE:              false,
	model.AttrDiskErrors:       false,
	model.AttrTempC:            false,
	model.AttrCPUFree:          false,
	model.AttrMemFreeMB:        false,
	model.AttrNICUp:            true,
	model.AttrPSUOK:            true,
	model.AttrStorageReachable: true,
	model.AttrNetworkReachable: true,
}

// Facts lists the attrs a query or scrape rule may fill, sorted.
func Facts() []string { return slices.Sorted(maps.Keys(factBool)) }

// Regular expressions the defaults share.
const (
	// DataNICs matches the device names of physical data NICs and bonds
	// (not lo, bridges, taps or veths).
	DataNICs = `(en|eth|ib|bond).*`
	// NetworkFilesystems matches the filesystem types of external storage.
	NetworkFilesystems = `nfs.*|cifs|smb3|ceph|glusterfs|fuse\.glusterfs|lustre`
)

// DefaultQueries returns the PromQL of each fact for node_exporter's
// metrics. Every query keeps the instance label, so that each sample names
// its host. Regular expressions are raw (backquoted) PromQL strings, so
// their backslashes stay as written.
func DefaultQueries() map[string]string {
	return map[string]string{
		model.AttrECCCorrected:     `sum by (instance) (increase(node_edac_correctable_errors_total[$window]))`,
		model.AttrECCUncorrected:   `sum by (instance) (increase(node_edac_uncorrectable_errors_total[$window]))`,
		model.AttrTempC:            `max by (instance) (node_hwmon_temp_celsius)`,
		model.AttrNICUp:            `min by (instance) (node_network_up{device=~` + "`" + DataNICs + "`" + `})`,
		model.AttrDiskErrors:       `sum by (instance) (node_md_disks{state="failed"})`,
		model.AttrStorageReachable: `max by (instance) (node_filesystem_device_error{fstype=~` + "`" + NetworkFilesystems + "`" + `}) == bool 0`,
	}
}

// ScrapeRule reads one fact from a scraped endpoint: the samples of Metric
// whose labels match, aggregated.
type ScrapeRule struct {
	// Attr is the fact it fills (one of Facts).
	Attr string
	// Metric is the metric family's name.
	Metric string
	// Match keeps the samples whose label matches each regular expression
	// (anchored, as in PromQL); Exclude drops those whose label matches.
	Match, Exclude map[string]string
	// Agg combines the samples: "sum", "max" or "min".
	Agg string
	// Counter reports the increase of the aggregate since the previous
	// scrape of the target (nothing on the first; a drop is a reset).
	Counter bool
	// Negate, for a health flag, makes a zero aggregate the healthy value
	// (e.g. no filesystem device errors: storage reachable).
	Negate bool
}

// DefaultScrapeRules reads the same facts as DefaultQueries from
// node_exporter's exposition.
func DefaultScrapeRules() []ScrapeRule {
	return []ScrapeRule{
		{Attr: model.AttrECCCorrected, Metric: "node_edac_correctable_errors_total", Agg: "sum", Counter: true},
		{Attr: model.AttrECCUncorrected, Metric: "node_edac_uncorrectable_errors_total", Agg: "sum", Counter: true},
		{Attr: model.AttrTempC, Metric: "node_hwmon_temp_celsius", Agg: "max"},
		{Attr: model.AttrNICUp, Metric: "node_network_up", Match: map[string]string{"device": DataNICs}, Agg: "min"},
		{Attr: model.AttrDiskErrors, Metric: "node_md_disks", Match: map[string]string{"state": "failed"}, Agg: "sum"},
		{Attr: model.AttrStorageReachable, Metric: "node_filesystem_device_error", Match: map[string]string{"fstype": NetworkFilesystems}, Agg: "max", Negate: true},
	}
}

// TelegrafScrapeRules reads what Telegraf's prometheus_client output
// exposes of its inputs.sensors and inputs.temp plugins: the hottest
// sensor. Telegraf has no EDAC or link-state input; pair it with queries
// or node_exporter for those.
func TelegrafScrapeRules() []ScrapeRule {
	return []ScrapeRule{
		{Attr: model.AttrTempC, Metric: "sensors_temp_input", Agg: "max"},
		{Attr: model.AttrTempC, Metric: "temp_temp", Agg: "max"},
	}
}

// facts is what one period says of one host: attr → value, merged
// worst-wins.
type facts struct {
	site  string
	attrs map[string]any
}

// set merges one value of attr into f, worst-wins: the higher count or
// temperature (the lower free capacity), false over true.
func (f *facts) set(attr string, v float64) {
	if f.attrs == nil {
		f.attrs = make(map[string]any, 6)
	}
	if factBool[attr] {
		b := v != 0
		if old, ok := f.attrs[attr].(bool); ok {
			b = b && old
		}
		f.attrs[attr] = b
		return
	}
	if old, ok := f.attrs[attr].(float64); ok {
		switch attr {
		case model.AttrCPUFree, model.AttrMemFreeMB:
			v = min(v, old)
		default:
			v = max(v, old)
		}
	}
	f.attrs[attr] = v
}
