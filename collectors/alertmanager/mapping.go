package alertmanager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Mapping says how alerts become observations: which labels name the VM,
// the host and the site, and what each alertname means while firing and
// once resolved. Alerts whose alertname has no entry are skipped (and
// counted), never guessed at.
type Mapping struct {
	// VMLabels are the labels naming the VM, first present wins; default
	// [vm].
	VMLabels []string `yaml:"vm_labels"`
	// HostLabels name the host; default [host, instance]. A value taken
	// from "instance" loses its ":port" (node_exporter's host:9100).
	HostLabels []string `yaml:"host_labels"`
	// SiteLabels name the site; default [site].
	SiteLabels []string `yaml:"site_labels"`
	// Alerts maps alertnames.
	Alerts []AlertMapping `yaml:"alerts"`
}

// AlertMapping is what one alertname means.
type AlertMapping struct {
	Alertname string `yaml:"alertname"`
	// Kind is what the alert is about: vm, host or service.
	Kind model.Kind `yaml:"kind"`
	// Service names the component for kind service (e.g. libvirtd);
	// default the alertname.
	Service  string `yaml:"service"`
	Firing   Effect `yaml:"firing"`
	Resolved Effect `yaml:"resolved"`
}

// Effect is the observation an alert gives in one status.
type Effect struct {
	// State is the state reported: required for vm (running, crashed,
	// shutoff, paused, unavailable, unknown) and service (up, down,
	// unknown); optional for host (up, down, unknown).
	State model.State `yaml:"state"`
	// Event is the observation's event; default the alertname while
	// firing and none once resolved.
	Event string `yaml:"event"`
	// Attrs are set on the observation: host hardware facts such as
	// ecc_uncorrected: 1 or storage_reachable: false.
	Attrs map[string]any `yaml:"attrs"`
}

// DefaultMapping has the label defaults and no alerts.
func DefaultMapping() Mapping {
	return Mapping{VMLabels: []string{"vm"}, HostLabels: []string{"host", "instance"}, SiteLabels: []string{"site"}}
}

// LoadMapping reads a mapping file (strict YAML: unknown keys are errors)
// and checks it; errors name the file, line and alertname.
func LoadMapping(path string) (Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Mapping{}, fmt.Errorf("read alertmanager mapping: %w", err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return Mapping{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapping reads and checks a mapping document.
func ParseMapping(b []byte) (Mapping, error) {
	m := DefaultMapping()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return Mapping{}, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// A second, loose pass only to know each alert's line.
	var lines struct {
		Alerts []yaml.Node `yaml:"alerts"`
	}
	_ = yaml.Unmarshal(b, &lines)
	line := func(i int) int {
		if i < len(lines.Alerts) {
			return lines.Alerts[i].Line
		}
		return 0
	}
	if err := m.check(line); err != nil {
		return Mapping{}, err
	}
	return m, nil
}

// check validates the mapping; line gives an alert's line (0: unknown).
func (m *Mapping) check(line func(int) int) error {
	var problems []string
	if len(m.VMLabels) == 0 || len(m.HostLabels) == 0 || len(m.SiteLabels) == 0 {
		problems = append(problems, "vm_labels, host_labels and site_labels must not be empty")
	}
	seen := map[string]int{}
	sample := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range m.Alerts {
		a := &m.Alerts[i]
		where := fmt.Sprintf("alerts[%d]", i)
		if l := line(i); l > 0 {
			where = fmt.Sprintf("line %d: %s", l, where)
		}
		if a.Alertname != "" {
			where += " (" + a.Alertname + ")"
		}
		bad := func(key, format string, args ...any) {
			problems = append(problems, where+": "+key+": "+fmt.Sprintf(format, args...))
		}
		switch {
		case a.Alertname == "":
			bad("alertname", "is required")
		case seen[a.Alertname] > 0:
			bad("alertname", "is mapped twice (first at alerts[%d])", seen[a.Alertname]-1)
		}
		seen[a.Alertname] = i + 1
		switch a.Kind {
		case model.KindVM, model.KindHost:
			if a.Service != "" {
				bad("service", "is only for kind service")
			}
		case model.KindService:
		case "":
			bad("kind", "is required (vm, host or service)")
			continue
		default:
			bad("kind", "%q is not vm, host or service", a.Kind)
			continue
		}
		for _, e := range []struct {
			key string
			eff *Effect
		}{{"firing", &a.Firing}, {"resolved", &a.Resolved}} {
			if a.Kind != model.KindHost && e.eff.State == "" {
				bad(e.key+".state", "is required for kind %s", a.Kind)
				continue
			}
			o := model.Observation{Source: "alertmanager", Kind: a.Kind, ID: "x", Host: "h", State: e.eff.State,
				Event: e.eff.Event, Attrs: e.eff.Attrs, TimeGenerated: sample}
			if err := o.Validate(sample); err != nil {
				bad(e.key, "%v", err)
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
