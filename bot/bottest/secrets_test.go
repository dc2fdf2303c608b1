package bottest

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"testing"
)

func TestFindSecrets(t *testing.T) {
	const secret = "xoxb-123/abc+def=="
	tests := []struct {
		name   string
		output string
		want   []string // encodings found
	}{
		{name: "clean", output: `{"msg":"posted","channel":"C1"}`},
		{name: "raw in a log line", output: "token=" + secret, want: []string{"raw"}},
		{name: "inside a JSON string", output: `{"url":"https://x/?t=xoxb-123\/abc+def=="}`, want: []string{"json"}},
		{name: "URL-encoded", output: "https://x/?t=" + url.QueryEscape(secret), want: []string{"url"}},
		{name: "base64", output: "Basic " + base64.StdEncoding.EncodeToString([]byte(secret)), want: []string{"base64"}},
		{name: "a prefix is not a leak", output: "xoxb-123/abc", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, l := range FindSecrets([]string{secret}, map[string]string{"out": tt.output}) {
				got = append(got, l.Encoding)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssertNoSecretsDoesNotPrintTheSecret(t *testing.T) {
	const secret = "s3cr3t-signing-key"
	rec := &fakeTB{}
	AssertNoSecrets(rec, []string{secret}, map[string]string{"log": "key=" + secret})
	if len(rec.errors) != 1 {
		t.Fatalf("errors = %q", rec.errors)
	}
	if FindSecrets([]string{secret}, map[string]string{"failure": rec.errors[0]}) != nil {
		t.Errorf("the failure message shows the secret: %q", rec.errors[0])
	}
}

type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
