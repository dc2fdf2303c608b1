// Package config reads vmtriage's configuration from the environment
// (prefix VMTRIAGE_) with go-envconfig, and describes every variable for
// `vmtriage serve -h`. Secrets are a type that never prints its value.
package config

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Prefix is the prefix of every environment variable vmtriage reads.
const Prefix = "VMTRIAGE_"

// Secret holds a credential. It prints, logs and marshals as "<secret>";
// only Reveal gives the value, at the one place that sends it.
type Secret string

// String hides the value.
func (Secret) String() string { return "<secret>" }

// GoString hides the value from %#v.
func (Secret) GoString() string { return "<secret>" }

// MarshalText hides the value from encoders.
func (Secret) MarshalText() ([]byte, error) { return []byte("<secret>"), nil }

// Reveal returns the value; call it only where the secret is sent.
func (s Secret) Reveal() string { return string(s) }

// Set reports whether a value was configured.
func (s Secret) Set() bool { return s != "" }

// Config is the service's configuration. The help tag is what
// `vmtriage serve -h` prints.
type Config struct {
	RedisURL string `env:"REDIS_URL" help:"Redis URL: redis://host:6379/0, rediss://, redis+cluster://h1:p1,h2:p2, redis+sentinel://h1:p1,h2:p2/master. Empty starts an embedded in-memory Redis (demo only: state is lost on exit)."`
	HTTPAddr string `env:"HTTP_ADDR, default=:8080" help:"Address the HTTP server listens on."`

	MaxBody     int64         `env:"MAX_BODY_BYTES, default=16777216" help:"Largest request body accepted by POST endpoints, in bytes."`
	Workers     int           `env:"INGEST_WORKERS, default=2" help:"Observation consumers in this replica."`
	Replica     string        `env:"REPLICA" help:"Name of this replica in Redis consumer groups (default: host name and process id)."`
	ReclaimIdle time.Duration `env:"RECLAIM_IDLE, default=30s" help:"Stream entries pending this long with a dead consumer are taken over."`

	RulesPath string `env:"RULES_PATH" help:"Rule file or folder of rule files; empty uses the built-in default rules."`
	KBPath    string `env:"KB_PATH" help:"Folder of Markdown runbooks; empty uses the built-in starter set."`
	KBBaseURL string `env:"KB_BASE_URL" help:"Base URL of runbook links (e.g. a Git web UI); empty links to this server's /kb/."`

	SlackBotToken      Secret `env:"SLACK_BOT_TOKEN" help:"Slack bot token (xoxb-...). Empty: incidents go to the log (serve) or the console (demo)."`
	SlackAppToken      Secret `env:"SLACK_APP_TOKEN" help:"Slack app-level token (xapp-...) for Socket Mode; no public URL needed."`
	SlackSigningSecret Secret `env:"SLACK_SIGNING_SECRET" help:"Signing secret verifying POST /slack/commands and /slack/interactions."`
	SlackAPIURL        string `env:"SLACK_API_URL, default=https://slack.com/api/" help:"Slack Web API base URL (tests point it elsewhere)."`
	SlackChannel       string `env:"SLACK_CHANNEL" help:"Default channel ID for incident messages; required with VMTRIAGE_SLACK_BOT_TOKEN."`
	// SlackSiteChannels and SlackSeverityChannels route incidents: an
	// incident goes to its site's channel and its severity's channel (one
	// message each), or to SlackChannel when neither is configured.
	SlackSiteChannels     map[string]string `env:"SLACK_SITE_CHANNELS" help:"Per-site channels, site:channel,... (e.g. pod-a:C0PODA,pod-b:C0PODB). An incident goes to its site's and its severity's channel, else to VMTRIAGE_SLACK_CHANNEL."`
	SlackSeverityChannels map[string]string `env:"SLACK_SEVERITY_CHANNELS" help:"Per-severity channels, severity:channel,... with severities critical, high, medium, low (e.g. critical:C0PAGE)."`

	JiraURL     string `env:"JIRA_URL" help:"Jira base URL; empty disables tickets."`
	JiraUser    string `env:"JIRA_USER" help:"Jira user (e-mail for Jira Cloud); empty with a token means a personal access token (Server/DC)."`
	JiraToken   Secret `env:"JIRA_TOKEN" help:"Jira API token (Cloud) or personal access token (Server/DC)."`
	JiraProject string `env:"JIRA_PROJECT" help:"Jira project key for incident tickets."`
	JiraFlavor  string `env:"JIRA_FLAVOR" help:"cloud or server (Server/Data Center); empty: cloud when VMTRIAGE_JIRA_USER is set, else server."`

	JiraIssueType          string            `env:"JIRA_ISSUE_TYPE, default=Incident" help:"Issue type of incident tickets."`
	JiraSeverities         []string          `env:"JIRA_SEVERITIES, default=critical,high" help:"Severities that get a ticket automatically; others on demand with /triage ticket."`
	JiraPriorities         map[string]string `env:"JIRA_PRIORITIES, default=critical:Highest,high:High,medium:Medium,low:Low" help:"Jira priority per severity, severity:priority,..."`
	JiraComponents         map[string]string `env:"JIRA_COMPONENTS" help:"Jira component per incident cause, cause:component,... (e.g. host hardware fault:Compute)."`
	JiraAssignees          map[string]string `env:"JIRA_ASSIGNEES" help:"Assignee per incident cause, cause:account,... (account ID on Cloud, user name on Server)."`
	JiraResolveTransitions []string          `env:"JIRA_RESOLVE_TRANSITIONS, default=Done,Resolve Issue,Close Issue" help:"Transition names tried, in order, when an incident resolves."`
	JiraReopenTransitions  []string          `env:"JIRA_REOPEN_TRANSITIONS, default=Reopen,To Do" help:"Transition names tried, in order, when an incident comes back."`
	JiraReopenWindow       time.Duration     `env:"JIRA_REOPEN_WINDOW, default=24h" help:"A recurrence within this time of the last ticket's resolution reopens it instead of opening a new one."`

	PublicURL string `env:"PUBLIC_URL" help:"This server's public URL (https://vmtriage.example.com), for absolute /kb/ links in Slack and Jira; empty gives links relative to this server."`

	AzureSubscriptions  []string          `env:"AZURE_SUBSCRIPTIONS" help:"Azure subscription IDs whose VMs' Resource Health is polled (comma-separated); empty turns the Azure collector off."`
	AzureTenantID       string            `env:"AZURE_TENANT_ID" help:"Entra ID tenant of the service principal."`
	AzureClientID       string            `env:"AZURE_CLIENT_ID" help:"Service principal (application) ID, with Reader on the subscriptions."`
	AzureClientSecret   Secret            `env:"AZURE_CLIENT_SECRET" help:"Service principal secret."`
	AzureEndpoint       string            `env:"AZURE_ENDPOINT, default=https://management.azure.com" help:"Azure Resource Manager endpoint (sovereign clouds, tests)."`
	AzureLoginEndpoint  string            `env:"AZURE_LOGIN_ENDPOINT, default=https://login.microsoftonline.com" help:"Entra ID authority that issues tokens."`
	AzureInterval       time.Duration     `env:"AZURE_INTERVAL, default=1m" help:"Time between Resource Health polls."`
	AzureKeepAlive      time.Duration     `env:"AZURE_KEEPALIVE, default=5m" help:"How often every VM still listed by Azure counts as seen; keep it below the rules' stopped_reporting."`
	AzureQuietBaseline  bool              `env:"AZURE_QUIET_BASELINE" help:"true: the first poll only records the baseline and sends nothing."`
	HeartbeatTokens     map[string]Secret `env:"HEARTBEAT_TOKENS" help:"Heartbeat senders and their bearer tokens, sender:token,... (tokens of 16+ characters); empty leaves POST /v1/heartbeats off."`
	AlertmanagerMapping string            `env:"ALERTMANAGER_MAPPING" help:"YAML file mapping Alertmanager alerts to observations; empty maps none (alerts are skipped and counted)."`
	AlertmanagerToken   Secret            `env:"ALERTMANAGER_TOKEN" help:"Bearer token POST /v1/alertmanager requires; empty requires none."`
	LatencyWindow       time.Duration     `env:"LATENCY_WINDOW, default=15m" help:"How far back GET /v1/latency and /triage latency look."`

	// Registered sites (collectors/sites) and host heartbeats.
	SitesToken        Secret        `env:"SITES_TOKEN" help:"Registration token POST /v1/sites and DELETE /v1/sites/{site} require (16+ characters); empty turns registered sites off."`
	SitesInterval     time.Duration `env:"SITES_INTERVAL, default=10s" help:"How often the registry of sites is read: a registration takes effect within this time, without a restart."`
	SitesPollInterval time.Duration `env:"SITES_POLL_INTERVAL, default=1m" help:"How often each registered endpoint is polled."`
	SitesFailAfter    int           `env:"SITES_FAIL_AFTER, default=3" help:"Failed polls in a row after which an endpoint counts as failing; a site whose every endpoint fails is one site-collectors-down incident."`
	SitesCAFile       string        `env:"SITES_CA_FILE" help:"PEM file of CA certificates trusted, besides the system's, for registered endpoints (a private CA)."`
	HeartbeatHosts    bool          `env:"HEARTBEAT_HOSTS, default=true" help:"Accept heartbeats of kind host on POST /v1/heartbeats: proof of life for hosts, never hardware facts."`

	// Inventory and impact: which services and teams a fault hits.
	InventoryPath  string `env:"INVENTORY_PATH" help:"Inventory file (.yaml, .yml or .csv) of VM → service → team → Slack channel, user group, Jira component and assignee; reloaded on change, a bad file is refused and the previous inventory stays. Empty: only what POST /v1/inventory pushed."`
	InventoryToken Secret `env:"INVENTORY_TOKEN" help:"Bearer token POST /v1/inventory requires (16+ characters); empty turns pushes off."`

	// libvirt and Prometheus collectors.
	LibvirtURIs             string        `env:"LIBVIRT_URIS" help:"libvirtd connections, host=uri,... (qemu+tls://, qemu+tcp://, a unix socket path); empty turns the libvirt collector off."`
	LibvirtSite             string        `env:"LIBVIRT_SITE" help:"Site of the libvirt hosts."`
	LibvirtInterval         time.Duration `env:"LIBVIRT_INTERVAL, default=1m" help:"Time between full libvirt listings (keep equal to the rules' period); lifecycle events arrive in between."`
	LibvirtRPCTimeout       time.Duration `env:"LIBVIRT_RPC_TIMEOUT, default=30s" help:"Bound on every call to a libvirtd; past it the connection is closed and retried."`
	PrometheusURL           string        `env:"PROMETHEUS_URL" help:"Prometheus server whose PromQL gives host hardware facts per period; empty runs no queries."`
	PrometheusToken         Secret        `env:"PROMETHEUS_TOKEN" help:"Bearer token sent to VMTRIAGE_PROMETHEUS_URL."`
	PrometheusHosts         string        `env:"PROMETHEUS_HOSTS" help:"instance=host,... naming hosts by their instance label; unlisted instances name the host without the port."`
	PrometheusSite          string        `env:"PROMETHEUS_SITE" help:"Site of the hosts Prometheus reports."`
	PrometheusInterval      time.Duration `env:"PROMETHEUS_INTERVAL, default=1m" help:"Time between Prometheus polls (keep equal to the rules' period)."`
	PrometheusQueries       string        `env:"PROMETHEUS_QUERIES" help:"YAML file of fact: PromQL replacing the node_exporter defaults (facts ecc_corrected, ecc_uncorrected, mce, disk_errors, temp_c, nic_up, psu_ok, storage_reachable, network_reachable; \"-\" turns one off)."`
	PrometheusScrapeTargets string        `env:"PROMETHEUS_SCRAPE_TARGETS" help:"Exporters scraped directly, host=url,... (node_exporter :9100, Telegraf :9273)."`
	PrometheusScrapeFormat  string        `env:"PROMETHEUS_SCRAPE_FORMAT, default=node_exporter" help:"What the scrape targets are: node_exporter or telegraf."`

	// Remedies: what acts on the fleet, and how approvals work.
	RemedyActuator        string        `env:"REMEDY_ACTUATOR, default=dryrun" help:"What carries out approved remedies: dryrun (only logs and records what it would do), libvirt (the hosts of VMTRIAGE_LIBVIRT_URIS), nova (VMTRIAGE_NOVA_URL with VMTRIAGE_NOVA_TOKEN) or azure (restart/redeploy with the VMTRIAGE_AZURE_* service principal)."`
	RemedyApprovalTimeout time.Duration `env:"REMEDY_APPROVAL_TIMEOUT, default=30m" help:"How long a remedy waits for approval; then it expires and nothing is done."`
	RemedyTwoApprovers    bool          `env:"REMEDY_TWO_APPROVERS" help:"true: migrate-host needs two distinct approvers."`
	RemedyConcurrency     int           `env:"REMEDY_CONCURRENCY, default=3" help:"How many VMs of one host migrate at once."`

	// Remedy actuators for OpenStack Nova and Azure (Azure reuses the
	// VMTRIAGE_AZURE_* service principal and subscriptions).
	NovaURL   string `env:"NOVA_URL" help:"Nova compute endpoint, project included (https://nova.example:8774/v2.1), for VMTRIAGE_REMEDY_ACTUATOR=nova."`
	NovaToken Secret `env:"NOVA_TOKEN" help:"Keystone token sent to Nova as X-Auth-Token (an admin token: live migration and disabling services are admin actions)."`

	// Outage books and the status page.
	SLATarget       float64       `env:"SLA_TARGET, default=99.95" help:"Availability target in percent that reports compare every VM with; VMs under it by the platform's downtime alone are listed as platform SLA breaches."`
	StatusToken     Secret        `env:"STATUS_TOKEN" help:"Read token of the status page (GET /, /vms/..., /faults, /chart.png): open it once with ?token=, then a cookie carries it. Empty: the page is open to anyone who reaches the port."`
	OutageSweep     time.Duration `env:"OUTAGE_SWEEP, default=1m" help:"How often the outage books reconcile every VM's state (outages no incident explains, VMs running again)."`
	OutageRetention time.Duration `env:"OUTAGE_RETENTION, default=9600h" help:"How long closed outage intervals are kept (default 400 days)."`

	Approvers []string `env:"APPROVERS" help:"Slack user or user-group IDs allowed to approve remedies (comma-separated). Empty: nobody can approve."`
	Operators []string `env:"OPERATORS" help:"Slack user or user-group IDs allowed to ack and silence (comma-separated). Empty: everyone in the channel."`

	LogLevel  string `env:"LOG_LEVEL, default=info" help:"Log level: debug, info, warn, error."`
	LogFormat string `env:"LOG_FORMAT, default=text" help:"Log format: text or json."`
}

// Load reads the configuration through lookup (nil means the process
// environment) and validates it. Every problem is reported at once, each
// naming its variable; the values of secrets are never echoed.
func Load(ctx context.Context, lookup envconfig.Lookuper) (Config, error) {
	if lookup == nil {
		lookup = envconfig.OsLookuper()
	}
	lookup = envconfig.PrefixLookuper(Prefix, lookup)
	var c Config
	var problems []string
	failed := map[string]bool{}
	// One field at a time, because go-envconfig stops at the first bad
	// value and names it by its Go field: an operator fixing a deployment
	// wants every problem, by variable, in one go.
	v := reflect.ValueOf(&c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}}))
		err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: one.Interface(), Lookuper: lookup})
		if err != nil {
			name := envName(f)
			failed[Prefix+name] = true
			problems = append(problems, decodeProblem(f, name, lookup, err))
			continue
		}
		v.Field(i).Set(one.Elem().Field(0))
	}
	for _, p := range c.validate() {
		// A value that did not decode was left zero; do not blame it twice.
		if name, _, _ := strings.Cut(p, ":"); !failed[name] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// decodeProblem says why the value of field f (variable name, without the
// prefix) did not decode, in the operator's words rather than strconv's.
func decodeProblem(f reflect.StructField, name string, lookup envconfig.Lookuper, err error) string {
	if name == "" {
		return prefixed(err.Error())
	}
	val, _ := lookup.Lookup(name)
	if f.Type == reflect.TypeOf(Secret("")) {
		return Prefix + name + ": the value is not valid"
	}
	var want string
	switch {
	case f.Type == reflect.TypeOf(time.Duration(0)):
		want = "a duration such as 30s, 5m or 1h30m"
	case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Uint64:
		want = "a whole number"
	case f.Type.Kind() == reflect.Float32 || f.Type.Kind() == reflect.Float64:
		want = "a number"
	case f.Type.Kind() == reflect.Bool:
		want = "true or false"
	default:
		return Prefix + name + ": " + strings.TrimPrefix(err.Error(), f.Name+": ")
	}
	return fmt.Sprintf("%s%s: %q is not %s", Prefix, name, val, want)
}

// prefixed puts the prefix back on variable names in go-envconfig's errors,
// which name them without it.
func prefixed(msg string) string {
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		name := envName(t.Field(i))
		if name != "" && strings.Contains(msg, name) && !strings.Contains(msg, Prefix+name) {
			msg = strings.Replace(msg, name, Prefix+name, 1)
		}
	}
	return msg
}

// validate returns every problem of the decoded values, each starting with
// the variable's name and a colon.
func (c *Config) validate() []string {
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, Prefix+name+": "+fmt.Sprintf(format, args...))
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			bad("REDIS_URL", "not a URL")
		case !redisSchemes[u.Scheme]:
			bad("REDIS_URL", "scheme %q is not redis, rediss, redis+cluster or redis+sentinel", u.Scheme)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "%q is not host:port", c.HTTPAddr)
	}
	if c.MaxBody < 1024 {
		bad("MAX_BODY_BYTES", "%d is smaller than 1024", c.MaxBody)
	}
	if c.Workers < 1 || c.Workers > 64 {
		bad("INGEST_WORKERS", "%d is not between 1 and 64", c.Workers)
	}
	if c.ReclaimIdle < time.Second {
		bad("RECLAIM_IDLE", "%s is shorter than 1s", c.ReclaimIdle)
	}
	if _, err := url.ParseRequestURI(c.SlackAPIURL); err != nil {
		bad("SLACK_API_URL", "%q is not a URL", c.SlackAPIURL)
	}
	c.validateSlack(bad)
	if c.JiraURL != "" {
		if u, err := url.ParseRequestURI(c.JiraURL); err != nil || u.Host == "" {
			bad("JIRA_URL", "%q is not a URL", c.JiraURL)
		}
		if c.JiraProject == "" {
			bad("JIRA_PROJECT", "required when VMTRIAGE_JIRA_URL is set")
		}
		if !c.JiraToken.Set() {
			bad("JIRA_TOKEN", "required when VMTRIAGE_JIRA_URL is set")
		}
		switch c.JiraFlavor {
		case "", "cloud", "server":
		default:
			bad("JIRA_FLAVOR", "%q is not cloud or server", c.JiraFlavor)
		}
		for _, sev := range c.JiraSeverities {
			if !knownSeverity(sev) {
				bad("JIRA_SEVERITIES", "%q is not critical, high, medium or low", sev)
			}
		}
		for _, sev := range sortedKeys(c.JiraPriorities) {
			if !knownSeverity(sev) {
				bad("JIRA_PRIORITIES", "%q is not critical, high, medium or low", sev)
			}
		}
		if c.JiraReopenWindow < 0 {
			bad("JIRA_REOPEN_WINDOW", "%s is negative", c.JiraReopenWindow)
		}
	}
	c.validateInventory(bad)
	c.validateCollectors(bad)
	c.validateSites(bad)
	c.validateOutages(bad)
	c.validateRemedies(bad)
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	return problems
}

// validateCollectors checks the collectors' variables: what each one
// needs once it is turned on.
func (c *Config) validateCollectors(bad func(name, format string, args ...any)) {
	if c.PublicURL != "" {
		if u, err := url.ParseRequestURI(c.PublicURL); err != nil || u.Host == "" {
			bad("PUBLIC_URL", "%q is not an absolute URL", c.PublicURL)
		}
	}
	if len(c.AzureSubscriptions) > 0 {
		if c.AzureTenantID == "" {
			bad("AZURE_TENANT_ID", "required when VMTRIAGE_AZURE_SUBSCRIPTIONS is set")
		}
		if c.AzureClientID == "" {
			bad("AZURE_CLIENT_ID", "required when VMTRIAGE_AZURE_SUBSCRIPTIONS is set")
		}
		if !c.AzureClientSecret.Set() {
			bad("AZURE_CLIENT_SECRET", "required when VMTRIAGE_AZURE_SUBSCRIPTIONS is set")
		}
	}
	for _, ep := range []struct{ name, url string }{{"AZURE_ENDPOINT", c.AzureEndpoint}, {"AZURE_LOGIN_ENDPOINT", c.AzureLoginEndpoint}} {
		if u, err := url.ParseRequestURI(ep.url); err != nil || u.Host == "" {
			bad(ep.name, "%q is not a URL", ep.url)
		}
	}
	if c.AzureInterval < 10*time.Second {
		bad("AZURE_INTERVAL", "%s is shorter than 10s (Azure throttles)", c.AzureInterval)
	}
	if c.PrometheusScrapeFormat != "node_exporter" && c.PrometheusScrapeFormat != "telegraf" {
		bad("PROMETHEUS_SCRAPE_FORMAT", "%q is not node_exporter or telegraf", c.PrometheusScrapeFormat)
	}
	if c.PrometheusURL != "" {
		if u, err := url.ParseRequestURI(c.PrometheusURL); err != nil || u.Host == "" {
			bad("PROMETHEUS_URL", "%q is not a URL", c.PrometheusURL)
		}
	}
	if c.LibvirtRPCTimeout < time.Second {
		bad("LIBVIRT_RPC_TIMEOUT", "%s is shorter than 1s", c.LibvirtRPCTimeout)
	}
	if c.LatencyWindow < time.Minute {
		bad("LATENCY_WINDOW", "%s is shorter than 1m", c.LatencyWindow)
	}
}

// validateSlack checks the Slack variables together: which mode needs
// which token, and the routing maps. Token values are never echoed, only
// whether they have the expected kind.
func (c *Config) validateSlack(bad func(name, format string, args ...any)) {
	if c.SlackBotToken.Set() && !strings.HasPrefix(c.SlackBotToken.Reveal(), "xoxb-") {
		bad("SLACK_BOT_TOKEN", "is not a bot token (it should start with xoxb-)")
	}
	if c.SlackAppToken.Set() && !strings.HasPrefix(c.SlackAppToken.Reveal(), "xapp-") {
		bad("SLACK_APP_TOKEN", "is not an app-level token (it should start with xapp-)")
	}
	switch {
	case c.SlackBotToken.Set() && strings.TrimSpace(c.SlackChannel) == "":
		bad("SLACK_CHANNEL", "required when VMTRIAGE_SLACK_BOT_TOKEN is set (the default channel for incidents)")
	case c.SlackChannel != "":
		checkChannel(bad, "SLACK_CHANNEL", "", c.SlackChannel)
	}
	if c.SlackAppToken.Set() && !c.SlackBotToken.Set() {
		bad("SLACK_BOT_TOKEN", "required when VMTRIAGE_SLACK_APP_TOKEN is set (Socket Mode posts with the bot token)")
	}
	if c.SlackBotToken.Set() && !c.SlackAppToken.Set() && !c.SlackSigningSecret.Set() {
		bad("SLACK_SIGNING_SECRET", "required when VMTRIAGE_SLACK_BOT_TOKEN is set without VMTRIAGE_SLACK_APP_TOKEN "+
			"(HTTP mode verifies every request from Slack); or set VMTRIAGE_SLACK_APP_TOKEN for Socket Mode")
	}
	for _, site := range sortedKeys(c.SlackSiteChannels) {
		if strings.TrimSpace(site) == "" {
			bad("SLACK_SITE_CHANNELS", "an entry has no site name (write site:channel,...)")
			continue
		}
		checkChannel(bad, "SLACK_SITE_CHANNELS", "site "+strconvQuote(site), c.SlackSiteChannels[site])
	}
	for _, sev := range sortedKeys(c.SlackSeverityChannels) {
		switch strings.ToLower(strings.TrimSpace(sev)) {
		case "critical", "high", "medium", "low":
		default:
			bad("SLACK_SEVERITY_CHANNELS", "%q is not a severity (critical, high, medium, low)", sev)
			continue
		}
		checkChannel(bad, "SLACK_SEVERITY_CHANNELS", "severity "+strconvQuote(sev), c.SlackSeverityChannels[sev])
	}
}

// checkChannel checks one channel ID of variable name; what says which
// entry it is, if the variable holds several.
func checkChannel(bad func(name, format string, args ...any), name, what, ch string) {
	prefix := ""
	if what != "" {
		prefix = what + ": "
	}
	switch {
	case strings.TrimSpace(ch) == "":
		bad(name, "%sno channel given", prefix)
	case strings.ContainsFunc(ch, func(r rune) bool { return r <= ' ' || r == '<' || r == '>' || r == '|' || r == ',' }):
		bad(name, "%s%q is not a channel ID (such as C0123456789)", prefix, ch)
	}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// redisSchemes are the URL schemes store.Connect understands.
var redisSchemes = map[string]bool{
	"redis": true, "redis+cluster": true, "redis+sentinel": true,
	"rediss": true, "rediss+cluster": true, "rediss+sentinel": true,
}

// Usage writes every variable with its default and meaning.
func Usage(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		f := t.Field(i)
		name := envName(f)
		if name == "" {
			continue
		}
		def := "-"
		// go-envconfig takes the rest of the tag after default=, commas
		// included.
		if _, v, ok := strings.Cut(f.Tag.Get("env"), "default="); ok {
			def = v
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", Prefix, name, def, f.Tag.Get("help"))
	}
	tw.Flush()
}

func envName(f reflect.StructField) string {
	tag := f.Tag.Get("env")
	name, _, _ := strings.Cut(tag, ",")
	return strings.TrimSpace(name)
}

func knownSeverity(s string) bool {
	switch s {
	case "critical", "high", "medium", "low":
		return true
	}
	return false
}

// validateRemedies checks the remedy settings.
func (c *Config) validateRemedies(bad func(name, format string, args ...any)) {
	switch c.RemedyActuator {
	case "dryrun":
	case "libvirt":
		if c.LibvirtURIs == "" {
			bad("REMEDY_ACTUATOR", "libvirt needs VMTRIAGE_LIBVIRT_URIS (host=uri,...)")
		}
	case "nova":
		if u, err := url.Parse(c.NovaURL); c.NovaURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("NOVA_URL", "nova actuator needs the compute endpoint as an http(s) URL, got %q", c.NovaURL)
		}
		if !c.NovaToken.Set() {
			bad("NOVA_TOKEN", "required when VMTRIAGE_REMEDY_ACTUATOR=nova")
		}
	case "azure":
		if len(c.AzureSubscriptions) == 0 {
			bad("AZURE_SUBSCRIPTIONS", "required when VMTRIAGE_REMEDY_ACTUATOR=azure")
		}
	default:
		bad("REMEDY_ACTUATOR", "%q is not dryrun, libvirt, nova or azure", c.RemedyActuator)
	}
	if c.RemedyApprovalTimeout < time.Minute {
		bad("REMEDY_APPROVAL_TIMEOUT", "%s is shorter than 1m", c.RemedyApprovalTimeout)
	}
	if c.RemedyConcurrency < 1 || c.RemedyConcurrency > 64 {
		bad("REMEDY_CONCURRENCY", "%d is not between 1 and 64", c.RemedyConcurrency)
	}
}

// validateOutages checks the outage books' settings.
func (c *Config) validateOutages(bad func(name, format string, args ...any)) {
	if c.SLATarget <= 0 || c.SLATarget >= 100 {
		bad("SLA_TARGET", "%g is not a percentage between 0 and 100 (exclusive)", c.SLATarget)
	}
	if c.OutageSweep < time.Second {
		bad("OUTAGE_SWEEP", "%s is shorter than 1s", c.OutageSweep)
	}
	if c.OutageRetention < 24*time.Hour {
		bad("OUTAGE_RETENTION", "%s is shorter than a day", c.OutageRetention)
	}
}

// validateInventory checks the inventory variables.
func (c *Config) validateInventory(bad func(name, format string, args ...any)) {
	if c.InventoryPath != "" {
		switch strings.ToLower(path.Ext(c.InventoryPath)) {
		case ".yaml", ".yml", ".csv":
		default:
			bad("INVENTORY_PATH", "%q must end in .yaml, .yml or .csv", c.InventoryPath)
		}
	}
	if c.InventoryToken.Set() && len(c.InventoryToken.Reveal()) < 16 {
		bad("INVENTORY_TOKEN", "is shorter than 16 characters")
	}
}
