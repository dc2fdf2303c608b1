package config_test

import (
	"maps"
	"reflect"
	"strings"
	"testing"
)

func TestLoadSlackModes(t *testing.T) {
	const (
		bot    = "xoxb-1111-2222-slacktesttoken"
		app    = "xapp-1-A0-3333-slacktestapptoken"
		secret = "0123456789abcdef-signing"
	)
	tests := []struct {
		name string
		env  map[string]string
		// want is the whole error, "" when the configuration is valid.
		want string
	}{
		{name: "slack off", env: map[string]string{}},
		{name: "http mode", env: map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": bot, "VMTRIAGE_SLACK_SIGNING_SECRET": secret, "VMTRIAGE_SLACK_CHANNEL": "C0OPS"}},
		{name: "socket mode", env: map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": bot, "VMTRIAGE_SLACK_APP_TOKEN": app, "VMTRIAGE_SLACK_CHANNEL": "C0OPS"}},
		{name: "both", env: map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": bot, "VMTRIAGE_SLACK_APP_TOKEN": app, "VMTRIAGE_SLACK_SIGNING_SECRET": secret, "VMTRIAGE_SLACK_CHANNEL": "C0OPS"}},
		{name: "bot token needs a channel", env: map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": bot, "VMTRIAGE_SLACK_APP_TOKEN": app},
			want: "VMTRIAGE_SLACK_CHANNEL: required when VMTRIAGE_SLACK_BOT_TOKEN is set (the default channel for incidents)"},
		{name: "http mode needs the signing secret", env: map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": bot, "VMTRIAGE_SLACK_CHANNEL": "C0OPS"},
			want: "VMTRIAGE_SLACK_SIGNING_SECRET: required when VMTRIAGE_SLACK_BOT_TOKEN is set without VMTRIAGE_SLACK_APP_TOKEN " +
				"(HTTP mode verifies every request from Slack); or set VMTRIAGE_SLACK_APP_TOKEN for Socket Mode"},
		{name: "socket mode needs the bot token", env: map[string]string{"VMTRIAGE_SLACK_APP_TOKEN": app},
			want: "VMTRIAGE_SLACK_BOT_TOKEN: required when VMTRIAGE_SLACK_APP_TOKEN is set (Socket Mode posts with the bot token)"},
		{name: "tokens swapped", env: map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": app, "VMTRIAGE_SLACK_APP_TOKEN": bot, "VMTRIAGE_SLACK_CHANNEL": "C0OPS"},
			want: "VMTRIAGE_SLACK_BOT_TOKEN: is not a bot token (it should start with xoxb-); " +
				"VMTRIAGE_SLACK_APP_TOKEN: is not an app-level token (it should start with xapp-)"},
		{name: "channel with a space", env: map[string]string{"VMTRIAGE_SLACK_CHANNEL": "C0 OPS"},
			want: `VMTRIAGE_SLACK_CHANNEL: "C0 OPS" is not a channel ID (such as C0123456789)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load refused a valid configuration: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Load accepted %v", tc.env)
			case tc.want != "" && err.Error() != "configuration: "+tc.want:
				t.Errorf("error:\n got %s\nwant configuration: %s", err, tc.want)
			}
			if err != nil {
				for _, s := range []string{bot, app, secret} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error echoes a secret: %v", err)
					}
				}
			}
		})
	}
}

func TestLoadSlackRouting(t *testing.T) {
	base := map[string]string{"VMTRIAGE_SLACK_BOT_TOKEN": "xoxb-1", "VMTRIAGE_SLACK_SIGNING_SECRET": "s", "VMTRIAGE_SLACK_CHANNEL": "C0OPS"}
	tests := []struct {
		name           string
		sites, sevs    string
		wantSites      map[string]string
		wantSeverities map[string]string
		want           string
	}{
		{name: "none", wantSites: nil, wantSeverities: nil},
		{name: "sites and severities", sites: "pod-a:C0PODA,pod-b:C0PODB", sevs: "critical:C0PAGE,low:C0QUIET",
			wantSites: map[string]string{"pod-a": "C0PODA", "pod-b": "C0PODB"}, wantSeverities: map[string]string{"critical": "C0PAGE", "low": "C0QUIET"}},
		{name: "unknown severity", sevs: "urgent:C0PAGE",
			want: `VMTRIAGE_SLACK_SEVERITY_CHANNELS: "urgent" is not a severity (critical, high, medium, low)`},
		{name: "site without channel", sites: "pod-a:",
			want: `VMTRIAGE_SLACK_SITE_CHANNELS: site "pod-a": no channel given`},
		{name: "channel with markup", sites: "pod-a:<#C0PODA|ops>",
			want: `VMTRIAGE_SLACK_SITE_CHANNELS: site "pod-a": "<#C0PODA|ops>" is not a channel ID (such as C0123456789)`},
		{name: "entry without site", sites: ":C0PODA",
			want: `VMTRIAGE_SLACK_SITE_CHANNELS: an entry has no site name (write site:channel,...)`},
		{name: "entry without separator", sites: "pod-a",
			want: `VMTRIAGE_SLACK_SITE_CHANNELS: pod-a: invalid map item`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(base)
			if tc.sites != "" {
				env["VMTRIAGE_SLACK_SITE_CHANNELS"] = tc.sites
			}
			if tc.sevs != "" {
				env["VMTRIAGE_SLACK_SEVERITY_CHANNELS"] = tc.sevs
			}
			c, err := load(t, env)
			if tc.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "configuration: "+tc.want) {
					t.Errorf("error:\n got %v\nwant configuration: %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.SlackSiteChannels, tc.wantSites) || !reflect.DeepEqual(c.SlackSeverityChannels, tc.wantSeverities) {
				t.Errorf("sites %v severities %v; want %v and %v", c.SlackSiteChannels, c.SlackSeverityChannels, tc.wantSites, tc.wantSeverities)
			}
		})
	}
}
