// Package bottest holds test helpers for the bot and its adapters: small
// hand-written fakes of the interfaces bot declares, a log recorder, and a
// check that no secret leaks into logs, errors or posts.
package bottest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Recorder is an io.Writer that keeps everything written to it; it is safe
// for concurrent use, so a logger and several goroutines may share it.
type Recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// String returns everything written so far.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// Logger returns a debug-level JSON logger writing to a new Recorder, so a
// test can both read the log and check it for secrets.
func Logger() (*slog.Logger, *Recorder) {
	rec := &Recorder{}
	return slog.New(slog.NewJSONHandler(rec, &slog.HandlerOptions{Level: slog.LevelDebug})), rec
}

// Leak says where a secret was found and in which encoding.
type Leak struct {
	Where    string
	Encoding string
}

// FindSecrets returns every place where one of secrets appears in outputs
// (name → captured text), whether raw or in the encodings a secret takes on
// its way out: JSON string escaping, URL query escaping and base64. Secrets
// shorter than 4 characters are refused with a panic: they would match by
// chance and prove nothing.
func FindSecrets(secrets []string, outputs map[string]string) []Leak {
	var leaks []Leak
	for _, s := range secrets {
		if len(s) < 4 {
			panic("bottest: a secret to look for must be at least 4 characters long")
		}
		forms := encodings(s)
		for where, text := range outputs {
			for _, f := range forms {
				if strings.Contains(text, f.text) {
					leaks = append(leaks, Leak{Where: where, Encoding: f.name})
					break
				}
			}
		}
	}
	return leaks
}

type form struct{ name, text string }

func encodings(s string) []form {
	j, _ := json.Marshal(s)
	js := string(j[1 : len(j)-1])
	forms := []form{
		{"raw", s},
		{"json", js},
		// Some encoders (and Slack's own API) escape "/" as "\/".
		{"json", strings.ReplaceAll(js, "/", `\/`)},
		{"url", url.QueryEscape(s)},
		{"url-path", url.PathEscape(s)},
		{"base64", base64.StdEncoding.EncodeToString([]byte(s))},
		{"base64-url", base64.RawURLEncoding.EncodeToString([]byte(s))},
	}
	return forms
}

// AssertNoSecrets fails t for every secret found in outputs (name →
// captured text: log output, error texts, rendered posts). The failure names
// the output and the encoding but never prints the secret itself.
func AssertNoSecrets(t testing.TB, secrets []string, outputs map[string]string) {
	t.Helper()
	for _, l := range FindSecrets(secrets, outputs) {
		t.Errorf("a secret appears in %s (%s encoding)", l.Where, l.Encoding)
	}
}
