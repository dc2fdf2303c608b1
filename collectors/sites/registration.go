package sites

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/vmtriage/vmtriage/internal/store"
)

// Limits of a registration.
const (
	MaxEndpoints = 32
	MaxTargetLen = 2048
)

// Kind is a kind of collector endpoint a site may register: where its
// target goes (Field "url" or "uri"), which schemes are accepted, and how
// its Poller is made.
type Kind struct {
	// Field is the registration field that holds the target: "url" or
	// "uri".
	Field string
	// Schemes are the accepted schemes, e.g. https or qemu+tls. Plain
	// http is accepted only to loopback with AllowLoopbackHTTP.
	Schemes []string
	// New makes the endpoint's poller.
	New Factory
}

// Registration is the body of POST /v1/sites.
type Registration struct {
	Site      string               `json:"site"`
	Endpoints []store.SiteEndpoint `json:"endpoints"`
	// Token may carry the registration token when the sender cannot set
	// an Authorization header.
	Token string `json:"token,omitempty"`
}

// FieldError is a registration problem, naming the field it is about.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists everything wrong with a registration.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Reason
	}
	return strings.Join(parts, "; ")
}

var siteName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// decodeRegistration reads a registration strictly: unknown fields are
// errors, so a misspelt "endpoint" does not register a site with nothing.
func decodeRegistration(body []byte) (Registration, error) {
	var r Registration
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return r, fmt.Errorf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
		case errors.As(err, &typ) && typ.Field != "":
			return r, fmt.Errorf("field %s has the wrong type (%s)", typ.Field, typ.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return r, errors.New("malformed JSON: the body ends before the registration does (truncated?)")
		case errors.Is(err, io.EOF):
			return r, errors.New(`body is empty; send {"site":"pod-a","endpoints":[{"kind":"prometheus","url":"https://..."}]}`)
		}
		return r, fmt.Errorf("body is not a registration: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return r, errors.New("body holds more than one JSON value; send one registration")
	}
	return r, nil
}

// validate checks r against the kinds this server polls and returns the
// site to store (targets trimmed), or a *ValidationError naming each bad
// field.
func validate(r Registration, kinds map[string]Kind, loopbackHTTP bool) (store.RegisteredSite, error) {
	var probs []FieldError
	bad := func(field, format string, args ...any) {
		probs = append(probs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	site := strings.TrimSpace(r.Site)
	switch {
	case site == "":
		bad("site", "is required (the name of the pod or region, e.g. pod-a)")
	case !siteName.MatchString(site):
		bad("site", "%q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", clip(site))
	}
	switch {
	case len(r.Endpoints) == 0:
		bad("endpoints", "at least one endpoint is required")
	case len(r.Endpoints) > MaxEndpoints:
		bad("endpoints", "%d endpoints, more than %d", len(r.Endpoints), MaxEndpoints)
	}
	out := store.RegisteredSite{Site: site}
	seen := map[string]int{}
	for i, ep := range r.Endpoints {
		if i >= MaxEndpoints {
			break
		}
		at := fmt.Sprintf("endpoints[%d]", i)
		ep.Kind = strings.TrimSpace(ep.Kind)
		ep.URL, ep.URI = strings.TrimSpace(ep.URL), strings.TrimSpace(ep.URI)
		k, ok := kinds[ep.Kind]
		if !ok {
			if ep.Kind == "" {
				bad(at+".kind", "is required (%s)", kindList(kinds))
			} else {
				bad(at+".kind", "%q is not polled by this server (%s)", clip(ep.Kind), kindList(kinds))
			}
			continue
		}
		target, other := ep.URL, ep.URI
		otherField := "uri"
		if k.Field == "uri" {
			target, other, otherField = ep.URI, ep.URL, "url"
		}
		if other != "" {
			bad(at+"."+otherField, "is not used by kind %s; put the target in %s", ep.Kind, k.Field)
		}
		field := at + "." + k.Field
		if reason := checkTarget(target, k, loopbackHTTP); reason != "" {
			bad(field, "%s", reason)
			continue
		}
		if j, dup := seen[ep.ID()]; dup {
			bad(field, "is the same endpoint as endpoints[%d]", j)
			continue
		}
		seen[ep.ID()] = i
		out.Endpoints = append(out.Endpoints, ep)
	}
	if len(probs) > 0 {
		return out, &ValidationError{Problems: probs}
	}
	return out, nil
}

// checkTarget says what is wrong with an endpoint's target, or "".
func checkTarget(target string, k Kind, loopbackHTTP bool) string {
	if target == "" {
		return fmt.Sprintf("is required (%s)", schemeExample(k))
	}
	if len(target) > MaxTargetLen {
		return fmt.Sprintf("is longer than %d characters", MaxTargetLen)
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Sprintf("%q is not an absolute URL (%s)", clip(target), schemeExample(k))
	}
	if u.User != nil {
		return "must not carry credentials (user:password@): registrations are stored and listed by GET /v1/sites"
	}
	scheme := strings.ToLower(u.Scheme)
	if slices.Contains(k.Schemes, scheme) {
		return ""
	}
	if scheme == "http" && slices.Contains(k.Schemes, "https") {
		if loopbackHTTP && isLoopback(u.Hostname()) {
			return ""
		}
		return "plain http is refused: endpoints are read over TLS (use https)"
	}
	return fmt.Sprintf("scheme %q is not accepted (%s)", clip(u.Scheme), schemeExample(k))
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func schemeExample(k Kind) string {
	return "scheme " + strings.Join(k.Schemes, " or ")
}

func kindList(kinds map[string]Kind) string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return "one of " + strings.Join(names, ", ")
}

func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
