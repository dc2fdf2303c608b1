package azurehealth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/model"
)

// page is one page of an availabilityStatuses listing. The records stay raw
// so that one bad record is skipped without losing its page.
type page struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"nextLink"`
}

// decodePage reads a listing page. It fails only when the page as a whole
// is unreadable; records are read one by one by parseRecord.
func decodePage(body []byte) (page, error) {
	var p page
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return p, errors.New("page is not a JSON object")
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("decode page: %w", err)
	}
	return p, nil
}

// wireStatus is an availabilityStatus as the API sends it. Only the fields
// vmtriage uses are declared; annotationName is not in the REST schema but
// is what Resource Graph and Event Grid carry, and is taken when present.
type wireStatus struct {
	ID         string `json:"id"`
	Location   string `json:"location"`
	Properties struct {
		AvailabilityState   string `json:"availabilityState"`
		AnnotationName      string `json:"annotationName"`
		Title               string `json:"title"`
		Summary             string `json:"summary"`
		ReasonType          string `json:"reasonType"`
		ReasonChronicity    string `json:"reasonChronicity"`
		Context             string `json:"context"`
		Category            string `json:"category"`
		HealthEventType     string `json:"healthEventType"`
		HealthEventCause    string `json:"healthEventCause"`
		HealthEventCategory string `json:"healthEventCategory"`
		HealthEventID       string `json:"healthEventId"`
		OccuredTime         string `json:"occuredTime"`
		ReportedTime        string `json:"reportedTime"`
	} `json:"properties"`
}

// record is one VM's availability status, checked and reduced to what the
// collector compares and sends.
type record struct {
	key      string // lower-cased resource id: Azure ids are case-insensitive
	name     string // VM name, or scale set "_" instance id
	resource string // resource id as Azure wrote it
	location string
	avail    string // availabilityState as sent
	state    model.State
	event    string
	attrs    map[string]any
	occured  time.Time
	reported time.Time
	digest   string // what a change is judged by
}

// errNotVM marks a record about another resource type; such records are
// skipped quietly (a subscription listing covers every resource).
var errNotVM = errors.New("not a virtual machine")

// parseRecord checks and reduces one raw record. It returns errNotVM for
// other resource types and a descriptive error for a malformed one.
func parseRecord(raw []byte) (record, error) {
	var w wireStatus
	if err := json.Unmarshal(raw, &w); err != nil {
		return record{}, fmt.Errorf("decode record: %w", err)
	}
	if w.ID == "" {
		return record{}, errors.New("record has no id")
	}
	resource, name, err := vmName(w.ID)
	if err != nil {
		return record{}, err
	}
	if err := usableName(name); err != nil {
		return record{}, err
	}
	p := &w.Properties
	r := record{
		key: strings.ToLower(resource), name: name, resource: resource,
		location: siteName(w.Location), avail: p.AvailabilityState,
	}
	// From here on a malformed record is returned with its resource, so the
	// log says which VM was skipped.
	named := record{resource: resource}
	if r.occured, err = parseTime("occuredTime", p.OccuredTime); err != nil {
		return named, err
	}
	if r.reported, err = parseTime("reportedTime", p.ReportedTime); err != nil {
		return named, err
	}
	r.event = annotation(p.AnnotationName, p.Title)
	switch p.AvailabilityState {
	case "Available", "Degraded":
		r.state = model.StateRunning
	case "Unavailable":
		r.state = model.StateUnavailable
		if userStops[r.event] {
			r.state = model.StateShutoff
		}
	case "Unknown":
		r.state = model.StateUnknown
	case "":
		return named, errors.New("properties.availabilityState is missing")
	default:
		return named, fmt.Errorf("properties.availabilityState %q is not Available, Unavailable, Degraded or Unknown", clip(p.AvailabilityState, 64))
	}
	r.attrs = map[string]any{"availability_state": p.AvailabilityState, "azure_resource_id": clip(resource, model.MaxAttrValLen)}
	for _, a := range []struct{ name, value string }{
		{"title", p.Title}, {"summary", p.Summary},
		{"reason_type", p.ReasonType}, {"reason_chronicity", p.ReasonChronicity},
		{"context", p.Context}, {"category", p.Category},
		{"health_event_type", p.HealthEventType}, {"health_event_cause", p.HealthEventCause},
		{"health_event_category", p.HealthEventCategory}, {"health_event_id", p.HealthEventID},
	} {
		if a.value != "" {
			r.attrs[a.name] = clip(strings.ToValidUTF8(a.value, "\uFFFD"), model.MaxAttrValLen)
		}
	}
	r.digest = strings.Join([]string{
		string(r.state), r.event, p.AvailabilityState, p.Title, p.ReasonType, p.ReasonChronicity,
		p.Context, p.Category, p.HealthEventType, p.HealthEventCause, p.HealthEventCategory,
		p.HealthEventID, p.OccuredTime, r.location,
	}, "\x00")
	return r, nil
}

// vmName finds the VM a record is about. The record id is the resource id
// followed by /providers/Microsoft.ResourceHealth/availabilityStatuses/current
// (any case); a single VM is .../providers/Microsoft.Compute/virtualMachines/NAME
// and a scale-set VM .../virtualMachineScaleSets/SET/virtualMachines/N, named
// SET_N as Azure names its instances.
func vmName(id string) (resource, name string, err error) {
	resource = id
	if i := strings.LastIndex(strings.ToLower(id), "/providers/microsoft.resourcehealth/"); i >= 0 {
		resource = id[:i]
	}
	seg := strings.Split(strings.Trim(resource, "/"), "/")
	for i := 0; i+1 < len(seg); i++ {
		if !strings.EqualFold(seg[i], "providers") || !strings.EqualFold(seg[i+1], "Microsoft.Compute") {
			continue
		}
		rest := seg[i+2:]
		switch {
		case len(rest) == 2 && strings.EqualFold(rest[0], "virtualMachines") && rest[1] != "":
			return resource, rest[1], nil
		case len(rest) == 4 && strings.EqualFold(rest[0], "virtualMachineScaleSets") &&
			strings.EqualFold(rest[2], "virtualMachines") && rest[1] != "" && rest[3] != "":
			return resource, rest[1] + "_" + rest[3], nil
		}
		return "", "", errNotVM
	}
	return "", "", errNotVM
}

// usableName refuses a VM name that cannot be an observation's id.
func usableName(name string) error {
	if !utf8.ValidString(name) || len(name) > model.MaxIDLen || strings.ContainsAny(name, " \t\r\n{}") {
		return fmt.Errorf("VM name %q in id is not usable", name)
	}
	return nil
}

// siteName turns a location into a site name: "East US" → "eastus".
// Anything but letters, digits, '-', '_' and '.' is dropped, so a strange
// location can never make the observation invalid.
func siteName(loc string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return -1
	}, loc)
	return clip(s, 64)
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("properties.%s %q is not an RFC 3339 time", field, clip(v, 64))
	}
	return t.UTC(), nil
}

// annotation returns the annotation name of a record: annotationName when
// the API sent one, else the title when it is one of the known names.
func annotation(name, title string) string {
	if name != "" && utf8.ValidString(name) && len(name) <= 128 && !strings.ContainsAny(name, "{}") {
		return name
	}
	if knownAnnotations[title] {
		return title
	}
	return ""
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// userStops are the annotations with which an Unavailable VM is stopped on
// purpose rather than down: it is reported shutoff.
var userStops = map[string]bool{
	"VirtualMachineStopInitiatedByControlPlane": true,
	"VirtualMachineStoppedInternally":           true,
	"VirtualMachineDeallocationInitiated":       true,
}

// knownAnnotations are the VM annotation names of Azure's documentation
// (shared/notes/azure-resource-health.md), which the default rules match.
var knownAnnotations = setOf(`
		VirtualMachineHostCrashed VirtualMachineStorageOffline VirtualMachineHostRebootedForRepair
		VirtualMachineMigrationInitiatedForRepair LiveMigrationSucceeded LiveMigrationFailure
		VirtualMachineRebootInitiatedForPlannedMaintenance VirtualMachineMigrationInitiatedForPlannedMaintenance
		VirtualMachinePlannedFreezeSucceeded VirtualMachinePlannedFreezeFailed VirtualMachinePlannedFreezeStarted
		PossiblyDegradedDueToHardwareFailureWithRedeployDeadline
		VirtualMachinePossiblyDegradedDueToHardwareFailureWithRedeployDeadline
		VirtualMachinePossiblyDegradedDueToHardwareFailure VirtualMachineMigrationScheduledForDegradedHardware
		VirtualMachineScheduledForServiceHealing AccelnetUnhealthy VirtualMachineCrashed
		VirtualMachineRestarted VirtualMachineRebootInitiatedByControlPlane
		VirtualMachineRedeployInitiatedByControlPlane VirtualMachineRedeployInitiatedByControlPlaneDueToPlannedMaintenance
		VirtualMachineStartInitiatedByControlPlane VirtualMachineStopInitiatedByControlPlane
		VirtualMachineStoppedInternally VirtualMachineDeallocationInitiated VirtualMachineAllocated
		VirtualMachineSizeChanged VirtualMachineConfigurationUpdated VirtualMachineFailedToSecureBoot
		VirtualMachinePreempted VirtualMachineProvisioningTimedOut`)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}
