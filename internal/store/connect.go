package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// connectTimeout bounds the first ping of Connect when ctx has no earlier
// deadline.
const connectTimeout = 5 * time.Second

// Connect opens a client for url and pings it. Accepted forms:
//
//	redis://[user:pass@]host:port[/db][?option=value...]   one server
//	rediss://...                                          the same over TLS
//	redis+cluster://[user:pass@]h1:p1,h2:p2[?...]         Redis Cluster (one seed is enough)
//	redis://h1:p1,h2:p2                                   several hosts: also Cluster
//	redis+sentinel://[user:pass@]h1:p1,h2:p2/master[/db][?...]   Sentinel
//
// "rediss+cluster" and "rediss+sentinel" use TLS. Options are go-redis's URL
// options (dial_timeout, read_timeout, pool_size, ...). For Sentinel the
// user and password are the data nodes'; the sentinels' own go in the
// sentinel_username and sentinel_password options. Special characters in a
// password must be percent-encoded. Errors never contain the password.
func Connect(ctx context.Context, url string) (redis.UniversalClient, error) {
	ep, err := parseURL(url)
	if err != nil {
		return nil, ep.redact(fmt.Errorf("parse redis url: %w", err))
	}
	rdb := ep.client()
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, ep.redact(fmt.Errorf("connect to redis %s at %s: %w", ep.kind, strings.Join(ep.addrs(), ","), err))
	}
	return rdb, nil
}

// endpoint is a parsed Redis URL: exactly one of the option sets is set.
type endpoint struct {
	kind     string // "standalone", "cluster" or "sentinel"
	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
	secrets  []string // what must never appear in an error
}

func (ep endpoint) client() redis.UniversalClient {
	switch {
	case ep.cluster != nil:
		return redis.NewClusterClient(ep.cluster)
	case ep.failover != nil:
		return redis.NewFailoverClient(ep.failover)
	default:
		return redis.NewClient(ep.single)
	}
}

func (ep endpoint) addrs() []string {
	switch {
	case ep.cluster != nil:
		return ep.cluster.Addrs
	case ep.failover != nil:
		return ep.failover.SentinelAddrs
	case ep.single != nil:
		return []string{ep.single.Addr}
	}
	return nil
}

// redact returns err, or if its text contains a secret, an error with the
// same text and every secret replaced (and nothing to unwrap, so the
// original text cannot leak through errors.Unwrap either).
func (ep endpoint) redact(err error) error {
	msg := err.Error()
	leaked := false
	for _, s := range ep.secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			leaked = true
		}
	}
	if !leaked {
		return err
	}
	return errors.New(msg)
}

// parseURL splits a URL into the go-redis options it stands for. It leans
// on go-redis's own parsers (for their query options) after rewriting the
// cluster and sentinel forms, whose comma-separated host lists net/url does
// not accept.
func parseURL(raw string) (endpoint, error) {
	var ep endpoint
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ep, errors.New("want redis://, rediss://, redis+cluster:// or redis+sentinel://")
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostlist := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostlist = authority[:i], authority[i+1:]
	}
	if userinfo != "" {
		ep.secrets = append(ep.secrets, userinfo)
		if _, pass, ok := strings.Cut(userinfo, ":"); ok && pass != "" {
			ep.secrets = append(ep.secrets, pass)
			if p, err := url.PathUnescape(pass); err == nil {
				ep.secrets = append(ep.secrets, p)
			}
		}
	}
	path, query, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return ep, errors.New("malformed query string")
	}
	for _, name := range []string{"password", "sentinel_password"} {
		ep.secrets = append(ep.secrets, q[name]...)
	}
	var hosts []string
	for h := range strings.SplitSeq(hostlist, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return ep, errors.New("no host")
	}

	base := "redis"
	switch scheme {
	case "redis", "redis+cluster", "redis+sentinel":
	case "rediss", "rediss+cluster", "rediss+sentinel":
		base = "rediss"
	default:
		return ep, fmt.Errorf("unknown scheme %q: want redis, rediss, redis+cluster or redis+sentinel", scheme)
	}
	at := ""
	if userinfo != "" {
		at = userinfo + "@"
	}

	switch {
	case strings.HasSuffix(scheme, "+sentinel"):
		ep.kind = "sentinel"
		segs := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
		if len(segs) == 0 || len(segs) > 2 {
			return ep, errors.New("sentinel url needs the master name as its path: redis+sentinel://h1:p1,h2:p2/<master>[/db]")
		}
		master, db := segs[0], ""
		if len(segs) == 2 {
			db = "/" + segs[1]
		}
		// The sentinels' credentials are options; the userinfo is the data
		// nodes' (go-redis reads it the other way round).
		sq := cloneQuery(q)
		sUser, sPass := sq.Get("sentinel_username"), sq.Get("sentinel_password")
		sq.Del("sentinel_username")
		sq.Del("sentinel_password")
		sq.Set("master_name", master)
		for _, h := range hosts[1:] {
			sq.Add("addr", h)
		}
		u := base + "://"
		if sUser != "" || sPass != "" {
			u += url.UserPassword(sUser, sPass).String() + "@"
		}
		o, err := redis.ParseFailoverURL(u + hosts[0] + db + "?" + sq.Encode())
		if err != nil {
			return ep, err
		}
		if userinfo != "" {
			ui, err := url.Parse(base + "://" + at + "x")
			if err != nil || ui.User == nil {
				return ep, errors.New("malformed user or password")
			}
			o.Username = ui.User.Username()
			o.Password, _ = ui.User.Password()
		}
		ep.failover = o
	case strings.HasSuffix(scheme, "+cluster") || len(hosts) > 1:
		ep.kind = "cluster"
		if p := strings.Trim(path, "/"); p != "" && p != "0" {
			return ep, errors.New("redis cluster has only database 0")
		}
		cq := cloneQuery(q)
		for _, h := range hosts[1:] {
			cq.Add("addr", h)
		}
		u := base + "://" + at + hosts[0]
		if len(cq) > 0 {
			u += "?" + cq.Encode()
		}
		o, err := redis.ParseClusterURL(u)
		if err != nil {
			return ep, err
		}
		ep.cluster = o
	default:
		ep.kind = "standalone"
		o, err := redis.ParseURL(raw)
		if err != nil {
			return ep, err
		}
		ep.single = o
	}
	return ep, nil
}

func cloneQuery(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
