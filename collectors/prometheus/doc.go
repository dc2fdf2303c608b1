// Package prometheus reads the hardware facts of each host, once per
// collection period, from what Prometheus already knows, and turns them
// into one host observation per host per period.
//
// Two ways in, which can be combined:
//
//   - Prometheus's HTTP API: one PromQL instant query per fact
//     (/api/v1/query, evaluated at the period's time), each returning one
//     sample per host. The defaults read node_exporter's metrics: EDAC
//     correctable and uncorrectable errors (their increase over the
//     period), the hottest hwmon sensor, the link state of the data NICs,
//     failed md array members, and whether network filesystems answer; any
//     of them can be replaced or switched off, and other facts (mce,
//     psu_ok, network_reachable, ...) added, through Options.Queries.
//     "$window" in a query stands for the period (Options.Window).
//   - Scraping exposition-format endpoints directly (node_exporter on
//     :9100, Telegraf's prometheus_client output on :9273) with
//     prometheus/common/expfmt, reading the same facts through
//     ScrapeRules; a counter's fact is its increase since the previous
//     scrape.
//
// Each sample's instance label (Options.HostLabel) names its host, through
// Options.Hosts when it is listed there, else with the port stripped
// ("10.0.0.7:9100" is host "10.0.0.7"). When several samples land on one
// host they are merged worst-wins, as the rules merge facts: counts and
// temperatures take the maximum, health flags are false if any is false.
//
// A fact that could not be read (its query failed, or its target did not
// answer) is left out of the period's observation; since a flag never
// reported reads true and a count never reported reads 0 in the rules, a
// broken query never invents a fault. A sample that is not a finite number
// is counted and skipped.
package prometheus
