package sites

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	kinds := DefaultKinds()
	tests := []struct {
		name     string
		body     string
		loopback bool
		// want lists "field: reason fragment" for each expected problem;
		// empty means valid.
		want []string
	}{
		{
			name: "valid with two kinds",
			body: `{"site":"pod-a","endpoints":[{"kind":"observations","url":"https://c.pod-a.example/v1/obs"},{"kind":"prometheus","url":"https://p.pod-a.example:9090"}]}`,
		},
		{
			name: "site missing",
			body: `{"endpoints":[{"kind":"prometheus","url":"https://p.example"}]}`,
			want: []string{"site: is required"},
		},
		{
			name: "site with a brace",
			body: `{"site":"pod{a}","endpoints":[{"kind":"prometheus","url":"https://p.example"}]}`,
			want: []string{"site: \"pod{a}\" must be 1 to 64"},
		},
		{
			name: "no endpoints",
			body: `{"site":"pod-a","endpoints":[]}`,
			want: []string{"endpoints: at least one"},
		},
		{
			name: "unknown kind names the kinds",
			body: `{"site":"pod-a","endpoints":[{"kind":"snmp","url":"https://p.example"}]}`,
			want: []string{"endpoints[0].kind: \"snmp\" is not polled by this server (one of observations, prometheus)"},
		},
		{
			name: "kind missing",
			body: `{"site":"pod-a","endpoints":[{"url":"https://p.example"}]}`,
			want: []string{"endpoints[0].kind: is required"},
		},
		{
			name: "plain http refused",
			body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"http://p.example:9090"}]}`,
			want: []string{"endpoints[0].url: plain http is refused"},
		},
		{
			name: "plain http to loopback refused unless allowed",
			body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"http://127.0.0.1:9090"}]}`,
			want: []string{"endpoints[0].url: plain http is refused"},
		},
		{
			name:     "plain http to loopback allowed in tests",
			body:     `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"http://127.0.0.1:9090"}]}`,
			loopback: true,
		},
		{
			name:     "plain http elsewhere refused even in tests",
			body:     `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"http://10.0.0.7:9090"}]}`,
			loopback: true,
			want:     []string{"endpoints[0].url: plain http is refused"},
		},
		{
			name: "credentials in the URL refused",
			body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"https://admin:hunter2@p.example"}]}`,
			want: []string{"endpoints[0].url: must not carry credentials"},
		},
		{
			name: "relative URL",
			body: `{"site":"pod-a","endpoints":[{"kind":"observations","url":"/v1/observations"}]}`,
			want: []string{"endpoints[0].url: \"/v1/observations\" is not an absolute URL"},
		},
		{
			name: "url missing",
			body: `{"site":"pod-a","endpoints":[{"kind":"observations"}]}`,
			want: []string{"endpoints[0].url: is required (scheme https)"},
		},
		{
			name: "uri given to a url kind",
			body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"https://p.example","uri":"qemu+tls://h/system"}]}`,
			want: []string{"endpoints[0].uri: is not used by kind prometheus"},
		},
		{
			name: "wrong scheme",
			body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"ftp://p.example"}]}`,
			want: []string{"endpoints[0].url: scheme \"ftp\" is not accepted"},
		},
		{
			name: "the same endpoint twice",
			body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"https://p.example"},{"kind":"prometheus","url":"https://p.example"}]}`,
			want: []string{"endpoints[1].url: is the same endpoint as endpoints[0]"},
		},
		{
			name: "every problem at once",
			body: `{"site":"","endpoints":[{"kind":"prometheus","url":"http://p.example"},{"kind":"x","url":"https://p.example"}]}`,
			want: []string{"site: is required", "endpoints[0].url: plain http", "endpoints[1].kind: \"x\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := decodeRegistration([]byte(tt.body))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			site, err := validate(reg, kinds, tt.loopback)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				if site.Site != reg.Site || len(site.Endpoints) != len(reg.Endpoints) {
					t.Fatalf("validated %+v from %+v", site, reg)
				}
				return
			}
			ve, ok := err.(*ValidationError)
			if !ok {
				t.Fatalf("validate: %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != len(tt.want) {
				t.Fatalf("problems %v, want %d: %v", ve.Problems, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				field, reason, _ := strings.Cut(w, ": ")
				if p := ve.Problems[i]; p.Field != field || !strings.Contains(p.Reason, reason) {
					t.Errorf("problem %d = %s: %s, want %s: …%s…", i, p.Field, p.Reason, field, reason)
				}
			}
		})
	}
}

func TestDecodeRegistration(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", ``, "body is empty"},
		{"not JSON", `site=pod-a`, "malformed JSON"},
		{"unknown field", `{"site":"pod-a","endpoint":[]}`, `unknown field "endpoint"`},
		{"wrong type", `{"site":"pod-a","endpoints":"https://p.example"}`, "field endpoints has the wrong type"},
		{"two values", `{"site":"a"} {"site":"b"}`, "more than one JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRegistration([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode(%q) = %v, want …%s…", tt.body, err, tt.want)
			}
		})
	}
}

// FuzzRegistration: no body makes decoding or validation panic, and what
// validates is a site the manager can poll.
func FuzzRegistration(f *testing.F) {
	for _, s := range []string{
		`{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"https://p.example"}]}`,
		`{"site":"pod-a","endpoints":[{"kind":"observations","url":"http://127.0.0.1:1/x"}],"token":"t"}`,
		`{"site":"","endpoints":[{}]}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	kinds := DefaultKinds()
	f.Fuzz(func(t *testing.T, body []byte) {
		reg, err := decodeRegistration(body)
		if err != nil {
			return
		}
		site, err := validate(reg, kinds, true)
		if err != nil {
			return
		}
		if !siteName.MatchString(site.Site) || len(site.Endpoints) == 0 || len(site.Endpoints) > MaxEndpoints {
			t.Fatalf("validated a bad site: %+v", site)
		}
		for _, ep := range site.Endpoints {
			if _, ok := kinds[ep.Kind]; !ok || ep.URL == "" {
				t.Fatalf("validated a bad endpoint: %+v", ep)
			}
		}
	})
}
