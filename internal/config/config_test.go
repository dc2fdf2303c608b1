package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/vmtriage/vmtriage/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func load(t *testing.T, env map[string]string) (config.Config, error) {
	t.Helper()
	return config.Load(context.Background(), envconfig.MapLookuper(env))
}

func TestLoadDefaults(t *testing.T) {
	got, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		HTTPAddr:    ":8080",
		MaxBody:     16 << 20,
		Workers:     2,
		ReclaimIdle: 30 * time.Second,
		SlackAPIURL: "https://slack.com/api/",
		LogLevel:    "info",
		LogFormat:   "text",

		JiraIssueType:          "Incident",
		JiraSeverities:         []string{"critical", "high"},
		JiraPriorities:         map[string]string{"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"},
		JiraResolveTransitions: []string{"Done", "Resolve Issue", "Close Issue"},
		JiraReopenTransitions:  []string{"Reopen", "To Do"},
		JiraReopenWindow:       24 * time.Hour,

		AzureEndpoint:      "https://management.azure.com",
		AzureLoginEndpoint: "https://login.microsoftonline.com",
		AzureInterval:      time.Minute,
		AzureKeepAlive:     5 * time.Minute,
		LatencyWindow:      15 * time.Minute,

		SitesInterval:     10 * time.Second,
		SitesPollInterval: time.Minute,
		SitesFailAfter:    3,
		HeartbeatHosts:    true,

		LibvirtInterval:        time.Minute,
		LibvirtRPCTimeout:      30 * time.Second,
		PrometheusInterval:     time.Minute,
		PrometheusScrapeFormat: "node_exporter",

		SLATarget:       99.95,
		OutageSweep:     time.Minute,
		OutageRetention: 400 * 24 * time.Hour,

		RemedyActuator:        "dryrun",
		RemedyApprovalTimeout: 30 * time.Minute,
		RemedyConcurrency:     3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadValues(t *testing.T) {
	got, err := load(t, map[string]string{
		"VMTRIAGE_REDIS_URL":            "redis+sentinel://:pw@h1:26379,h2:26379/mymaster",
		"VMTRIAGE_HTTP_ADDR":            "127.0.0.1:9090",
		"VMTRIAGE_MAX_BODY_BYTES":       "2048",
		"VMTRIAGE_INGEST_WORKERS":       "8",
		"VMTRIAGE_REPLICA":              "vt-1",
		"VMTRIAGE_RECLAIM_IDLE":         "1m30s",
		"VMTRIAGE_RULES_PATH":           "/etc/vmtriage/rules",
		"VMTRIAGE_SLACK_BOT_TOKEN":      "xoxb-1",
		"VMTRIAGE_JIRA_URL":             "https://jira.example",
		"VMTRIAGE_JIRA_TOKEN":           "tok",
		"VMTRIAGE_JIRA_PROJECT":         "OPS",
		"VMTRIAGE_APPROVERS":            "U1,S2",
		"VMTRIAGE_LOG_LEVEL":            "DEBUG",
		"VMTRIAGE_LOG_FORMAT":           "json",
		"SLACK_BOT_TOKEN":               "without the prefix: ignored",
		"VMTRIAGE_VMTRIAGE_HTTP_ADDR":   "doubled prefix: ignored",
		"VMTRIAGE_SLACK_SIGNING_SECRET": "s3",
		"VMTRIAGE_SLACK_CHANNEL":        "C0OPS",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"RedisURL", got.RedisURL, "redis+sentinel://:pw@h1:26379,h2:26379/mymaster"},
		{"HTTPAddr", got.HTTPAddr, "127.0.0.1:9090"},
		{"MaxBody", got.MaxBody, int64(2048)},
		{"Workers", got.Workers, 8},
		{"Replica", got.Replica, "vt-1"},
		{"ReclaimIdle", got.ReclaimIdle, 90 * time.Second},
		{"RulesPath", got.RulesPath, "/etc/vmtriage/rules"},
		{"SlackBotToken", got.SlackBotToken.Reveal(), "xoxb-1"},
		{"SlackSigningSecret", got.SlackSigningSecret.Reveal(), "s3"},
		{"SlackAppToken set", got.SlackAppToken.Set(), false},
		{"JiraToken", got.JiraToken.Reveal(), "tok"},
		{"Approvers", got.Approvers, []string{"U1", "S2"}},
		{"Operators", got.Operators, []string(nil)},
		{"LogLevel", got.LogLevel, "DEBUG"},
		{"LogFormat", got.LogFormat, "json"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		// want is the whole error: every problem, each naming its variable.
		want string
	}{
		{name: "redis scheme", env: map[string]string{"VMTRIAGE_REDIS_URL": "http://h:6379"},
			want: `VMTRIAGE_REDIS_URL: scheme "http" is not redis, rediss, redis+cluster or redis+sentinel`},
		{name: "redis scheme that only starts like one", env: map[string]string{"VMTRIAGE_REDIS_URL": "redisx://h:6379"},
			want: `VMTRIAGE_REDIS_URL: scheme "redisx" is not redis, rediss, redis+cluster or redis+sentinel`},
		{name: "redis url unparsable, password not echoed", env: map[string]string{"VMTRIAGE_REDIS_URL": "redis://:hunter2@h:6379/%zz"},
			want: `VMTRIAGE_REDIS_URL: not a URL`},
		{name: "remedy actuator unknown", env: map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "vmware"},
			want: `VMTRIAGE_REMEDY_ACTUATOR: "vmware" is not dryrun, libvirt, nova or azure`},
		{name: "nova actuator without its variables", env: map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova"},
			want: `VMTRIAGE_NOVA_URL: nova actuator needs the compute endpoint as an http(s) URL, got ""; VMTRIAGE_NOVA_TOKEN: required when VMTRIAGE_REMEDY_ACTUATOR=nova`},
		{name: "nova url not http", env: map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova", "VMTRIAGE_NOVA_URL": "nova:8774", "VMTRIAGE_NOVA_TOKEN": "LEAK-nova-0123456789"},
			want: `VMTRIAGE_NOVA_URL: nova actuator needs the compute endpoint as an http(s) URL, got "nova:8774"`},
		{name: "azure actuator without subscriptions", env: map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "azure"},
			want: `VMTRIAGE_AZURE_SUBSCRIPTIONS: required when VMTRIAGE_REMEDY_ACTUATOR=azure`},
		{name: "http addr without port", env: map[string]string{"VMTRIAGE_HTTP_ADDR": "localhost"},
			want: `VMTRIAGE_HTTP_ADDR: "localhost" is not host:port`},
		{name: "http addr set empty", env: map[string]string{"VMTRIAGE_HTTP_ADDR": ""},
			want: `VMTRIAGE_HTTP_ADDR: "" is not host:port`},
		{name: "body limit not a number", env: map[string]string{"VMTRIAGE_MAX_BODY_BYTES": "16MB"},
			want: `VMTRIAGE_MAX_BODY_BYTES: "16MB" is not a whole number`},
		{name: "body limit too small", env: map[string]string{"VMTRIAGE_MAX_BODY_BYTES": "100"},
			want: `VMTRIAGE_MAX_BODY_BYTES: 100 is smaller than 1024`},
		{name: "workers not a number", env: map[string]string{"VMTRIAGE_INGEST_WORKERS": "two"},
			want: `VMTRIAGE_INGEST_WORKERS: "two" is not a whole number`},
		{name: "no workers", env: map[string]string{"VMTRIAGE_INGEST_WORKERS": "0"},
			want: `VMTRIAGE_INGEST_WORKERS: 0 is not between 1 and 64`},
		{name: "too many workers", env: map[string]string{"VMTRIAGE_INGEST_WORKERS": "65"},
			want: `VMTRIAGE_INGEST_WORKERS: 65 is not between 1 and 64`},
		{name: "reclaim idle without unit", env: map[string]string{"VMTRIAGE_RECLAIM_IDLE": "30"},
			want: `VMTRIAGE_RECLAIM_IDLE: "30" is not a duration such as 30s, 5m or 1h30m`},
		{name: "reclaim idle too short", env: map[string]string{"VMTRIAGE_RECLAIM_IDLE": "500ms"},
			want: `VMTRIAGE_RECLAIM_IDLE: 500ms is shorter than 1s`},
		{name: "slack api url", env: map[string]string{"VMTRIAGE_SLACK_API_URL": "slack"},
			want: `VMTRIAGE_SLACK_API_URL: "slack" is not a URL`},
		{name: "jira url", env: map[string]string{"VMTRIAGE_JIRA_URL": "jira.example", "VMTRIAGE_JIRA_PROJECT": "OPS", "VMTRIAGE_JIRA_TOKEN": "t"},
			want: `VMTRIAGE_JIRA_URL: "jira.example" is not a URL`},
		{name: "jira without project and token", env: map[string]string{"VMTRIAGE_JIRA_URL": "https://jira.example"},
			want: `VMTRIAGE_JIRA_PROJECT: required when VMTRIAGE_JIRA_URL is set; VMTRIAGE_JIRA_TOKEN: required when VMTRIAGE_JIRA_URL is set`},
		{name: "jira flavor, severities and priorities", env: map[string]string{"VMTRIAGE_JIRA_URL": "https://jira.example", "VMTRIAGE_JIRA_PROJECT": "OPS", "VMTRIAGE_JIRA_TOKEN": "t",
			"VMTRIAGE_JIRA_FLAVOR": "datacenter", "VMTRIAGE_JIRA_SEVERITIES": "critical,urgent", "VMTRIAGE_JIRA_PRIORITIES": "blocker:Highest"},
			want: `VMTRIAGE_JIRA_FLAVOR: "datacenter" is not cloud or server; VMTRIAGE_JIRA_SEVERITIES: "urgent" is not critical, high, medium or low; VMTRIAGE_JIRA_PRIORITIES: "blocker" is not critical, high, medium or low`},
		{name: "azure without its service principal", env: map[string]string{"VMTRIAGE_AZURE_SUBSCRIPTIONS": "sub-1"},
			want: `VMTRIAGE_AZURE_TENANT_ID: required when VMTRIAGE_AZURE_SUBSCRIPTIONS is set; VMTRIAGE_AZURE_CLIENT_ID: required when VMTRIAGE_AZURE_SUBSCRIPTIONS is set; VMTRIAGE_AZURE_CLIENT_SECRET: required when VMTRIAGE_AZURE_SUBSCRIPTIONS is set`},
		{name: "azure endpoints and interval", env: map[string]string{"VMTRIAGE_AZURE_ENDPOINT": "management", "VMTRIAGE_AZURE_INTERVAL": "1s"},
			want: `VMTRIAGE_AZURE_ENDPOINT: "management" is not a URL; VMTRIAGE_AZURE_INTERVAL: 1s is shorter than 10s (Azure throttles)`},
		{name: "public url and latency window", env: map[string]string{"VMTRIAGE_PUBLIC_URL": "vmtriage.example", "VMTRIAGE_LATENCY_WINDOW": "10s"},
			want: `VMTRIAGE_PUBLIC_URL: "vmtriage.example" is not an absolute URL; VMTRIAGE_LATENCY_WINDOW: 10s is shorter than 1m`},
		{name: "log level", env: map[string]string{"VMTRIAGE_LOG_LEVEL": "verbose"},
			want: `VMTRIAGE_LOG_LEVEL: "verbose" is not debug, info, warn or error`},
		{name: "log format", env: map[string]string{"VMTRIAGE_LOG_FORMAT": "logfmt"},
			want: `VMTRIAGE_LOG_FORMAT: "logfmt" is not text or json`},
		{
			name: "several problems at once, decoding and validation, each named once",
			env: map[string]string{
				"VMTRIAGE_INGEST_WORKERS": "x", "VMTRIAGE_RECLAIM_IDLE": "soon", "VMTRIAGE_MAX_BODY_BYTES": "1",
				"VMTRIAGE_LOG_FORMAT": "xml", "VMTRIAGE_HTTP_ADDR": "8080",
			},
			want: `VMTRIAGE_INGEST_WORKERS: "x" is not a whole number; ` +
				`VMTRIAGE_RECLAIM_IDLE: "soon" is not a duration such as 30s, 5m or 1h30m; ` +
				`VMTRIAGE_HTTP_ADDR: "8080" is not host:port; ` +
				`VMTRIAGE_MAX_BODY_BYTES: 1 is smaller than 1024; ` +
				`VMTRIAGE_LOG_FORMAT: "xml" is not text or json`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env)
			if err == nil {
				t.Fatalf("Load accepted %v", tc.env)
			}
			if got, want := err.Error(), "configuration: "+tc.want; got != want {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes a password: %v", err)
			}
		})
	}
}

// secrets are the values given to every Secret variable in the leak tests.
var secrets = map[string]string{
	"VMTRIAGE_SLACK_BOT_TOKEN":      "xoxb-LEAK-bot",
	"VMTRIAGE_SLACK_APP_TOKEN":      "xapp-LEAK-app",
	"VMTRIAGE_SLACK_SIGNING_SECRET": "LEAK-signing",
	"VMTRIAGE_JIRA_TOKEN":           "LEAK-jira",
	"VMTRIAGE_AZURE_CLIENT_SECRET":  "LEAK-azure",
	"VMTRIAGE_ALERTMANAGER_TOKEN":   "LEAK-alertmanager",
	"VMTRIAGE_PROMETHEUS_TOKEN":     "LEAK-prometheus",
	"VMTRIAGE_STATUS_TOKEN":         "LEAK-status",
	"VMTRIAGE_HEARTBEAT_TOKENS":     "site-a:LEAK-heartbeat-0123456789",
	"VMTRIAGE_SITES_TOKEN":          "LEAK-sites-0123456789",
	"VMTRIAGE_INVENTORY_TOKEN":      "LEAK-inventory-0123456789",
	"VMTRIAGE_NOVA_TOKEN":           "LEAK-nova-0123456789",
}

// assertNoSecret fails if out holds any secret value.
func assertNoSecret(t *testing.T, how, out string) {
	t.Helper()
	for name, v := range secrets {
		if strings.Contains(out, v) {
			t.Errorf("%s prints %s: %s", how, name, out)
		}
	}
	if !strings.Contains(out, "<secret>") && !strings.Contains(out, "\\u003csecret\\u003e") {
		t.Errorf("%s does not show <secret> where a secret is: %s", how, out)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	env := map[string]string{"VMTRIAGE_JIRA_URL": "https://jira.example", "VMTRIAGE_JIRA_PROJECT": "OPS", "VMTRIAGE_SLACK_CHANNEL": "C0OPS",
		"VMTRIAGE_AZURE_SUBSCRIPTIONS": "sub-1", "VMTRIAGE_AZURE_TENANT_ID": "tenant", "VMTRIAGE_AZURE_CLIENT_ID": "client"}
	for k, v := range secrets {
		env[k] = v
	}
	c, err := load(t, env)
	if err != nil {
		t.Fatal(err)
	}
	// Every Secret field of Config must be set here, or the test proves
	// less than it claims: a new secret variable must join secrets above.
	rv := reflect.ValueOf(c)
	for i := range rv.NumField() {
		if s, ok := rv.Field(i).Interface().(config.Secret); ok && !s.Set() {
			t.Errorf("secret field %s is not covered by the leak test", rv.Type().Field(i).Name)
		}
	}
	if c.SlackBotToken.Reveal() != secrets["VMTRIAGE_SLACK_BOT_TOKEN"] {
		t.Fatal("Reveal does not give the value")
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		assertNoSecret(t, verb+" of Config", fmt.Sprintf(verb, c))
		assertNoSecret(t, verb+" of *Config", fmt.Sprintf(verb, &c))
		assertNoSecret(t, verb+" of a Secret", fmt.Sprintf(verb, c.JiraToken))
	}
	assertNoSecret(t, "fmt.Sprint of a Secret", fmt.Sprint(c.SlackAppToken))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json of Config", string(b))

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("start", "config", c, "token", c.SlackBotToken, slog.Any("ptr", &c))
		assertNoSecret(t, name, buf.String())
	}

	// A refused configuration does not echo secrets either.
	bad := map[string]string{"VMTRIAGE_JIRA_URL": "not a url", "VMTRIAGE_LOG_LEVEL": "loud"}
	for k, v := range secrets {
		bad[k] = v
	}
	if _, err := load(t, bad); err == nil {
		t.Fatal("bad configuration accepted")
	} else {
		for _, v := range secrets {
			if strings.Contains(err.Error(), v) {
				t.Errorf("error prints a secret: %v", err)
			}
		}
	}
}

func TestUsageGolden(t *testing.T) {
	var buf bytes.Buffer
	config.Usage(&buf)
	path := filepath.Join("testdata", "usage.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Usage differs from %s (rerun with -update if the change is meant):\n--- got\n%s\n--- want\n%s", path, buf.Bytes(), want)
	}
}

// TestUsageListsEveryVariable holds without the golden file: every
// variable Load reads is in Usage, with a meaning, and a default is shown
// exactly when Load has one.
func TestUsageListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	config.Usage(&buf)
	lines := map[string]string{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	defaults, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	dv := reflect.ValueOf(defaults)
	typ := dv.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		name = config.Prefix + strings.TrimSpace(name)
		line, ok := lines[name]
		if !ok {
			t.Errorf("Usage does not list %s", name)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			t.Errorf("Usage line for %s has no meaning: %q", name, line)
			continue
		}
		hasDefault := !dv.Field(i).IsZero()
		if shown := fields[1] != "-"; shown != hasDefault {
			t.Errorf("%s: Usage shows default %q, but Load's default is %v", name, fields[1], dv.Field(i).Interface())
		}
	}
}
