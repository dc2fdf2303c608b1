// Package sites lets a site — a pod, a region, a data centre with its own
// collectors — register itself and its collector endpoints with vmtriage
// (POST /v1/sites), and polls them without a restart.
//
// This is the monitoring half of the centralized-management seed: many
// pods, each exposing what it knows, registered over REST with a token and
// read over TLS by one central service. A registration names the site and
// its endpoints:
//
//	{"site":"pod-a","endpoints":[
//	  {"kind":"observations","url":"https://collector.pod-a.example/v1/observations"},
//	  {"kind":"prometheus","url":"https://prometheus.pod-a.example"}]}
//
// and is authenticated with the registration token (Authorization: Bearer,
// or a "token" field), compared in constant time. Endpoints must be https:
// plain http is refused, except to 127.0.0.1 or ::1 when the handler is
// built with AllowLoopbackHTTP (tests only). Credentials in URLs are
// refused, because registrations are stored and listed.
//
// The registry lives in Redis, so every replica sees it. A Manager reads
// it every Interval and keeps one Poller per registered endpoint, created
// by the factory of its kind and dropped when the endpoint is no longer
// registered; endpoints are polled every PollInterval, under a Redis lease
// so that of several replicas only one polls each endpoint. GET /v1/sites
// lists the sites with each endpoint's last poll.
//
// A site whose every endpoint failed its last FailAfter polls is blind, and
// that is one incident for the site, not one per source: the Manager sends
// a service observation "site-collectors" for the site, down, and up again
// when any endpoint recovers (the default rule site-collectors-down in
// rules/default/45-sites.yaml raises it).
package sites
