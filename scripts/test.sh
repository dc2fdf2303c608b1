#!/usr/bin/env bash
# Runs vmtriage's tests on a fresh Debian machine: makes sure a Redis answers
# on 127.0.0.1:6379 (installing and starting redis-server when it is absent),
# starts libvirtd, Prometheus and node_exporter for the collector tests
# (installing them when absent; stopped at exit), then vets, checks
# formatting and runs every test. Tests that need a daemon fail, never skip,
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if [ -z "${VMTRIAGE_TEST_REDIS_URL:-}" ] && ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "test: redis-server not found; installing it with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  echo "test: starting redis-server on 127.0.0.1:6379 (nothing kept on disk)" >&2
  mkdir -p /tmp/vmtriage-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/vmtriage-redis --logfile /tmp/vmtriage-redis/redis.log
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "test: redis-server did not start" >&2; exit 1; }
fi

# The collector tests talk to real daemons from Debian: libvirtd (serving its
# test driver) for collectors/libvirt, Prometheus scraping node_exporter for
# collectors/prometheus, and Chromium for the status page. They are installed when missing, started for this
# run on a unix socket and 127.0.0.1 only, with everything kept in a temporary
# directory, and stopped at exit. Their tests fail, never skip, without them.
missing=()
command -v libvirtd >/dev/null 2>&1 || [ -x /usr/sbin/libvirtd ] || missing+=(libvirt-daemon)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || missing+=(prometheus-node-exporter)
# The status page is checked in a real headless browser.
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: ${missing[*]} not found; installing with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' own services (a system libvirtd, Prometheus on :9090,
  # node_exporter on :9100 of every interface) from starting at install.
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
fi
daemons=$(mktemp -d /tmp/vmtriage-daemons.XXXXXX)
chmod 755 "$daemons"
stop_daemons() {
  [ -z "${VMTRIAGE_TEST_LIBVIRT_DIR:-}" ] || scripts/daemons/libvirtd.sh stop "$daemons/libvirt" || true
  scripts/daemons/prometheus.sh stop "$daemons/prometheus" || true
  rm -rf "$daemons"
}
trap stop_daemons EXIT
if [ -z "${VMTRIAGE_TEST_LIBVIRT_SOCK:-}" ]; then
  echo "test: starting libvirtd on a unix socket in $daemons/libvirt" >&2
  scripts/daemons/libvirtd.sh start "$daemons/libvirt"
  export VMTRIAGE_TEST_LIBVIRT_SOCK="$daemons/libvirt/run/libvirt-sock"
  export VMTRIAGE_TEST_LIBVIRT_DIR="$daemons/libvirt"
  export VMTRIAGE_TEST_LIBVIRT_CTL="$PWD/scripts/daemons/libvirtd.sh"
fi
echo "test: starting prometheus and prometheus-node-exporter on 127.0.0.1" >&2
scripts/daemons/prometheus.sh start "$daemons/prometheus"
# shellcheck disable=SC1091
. "$daemons/prometheus/env"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 ./... "$@"
