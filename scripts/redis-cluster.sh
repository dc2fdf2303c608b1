#!/usr/bin/env bash
# Starts or stops a three-master Redis Cluster on 127.0.0.1 for the tests.
#
#   scripts/redis-cluster.sh start   # prints the URL for VMTRIAGE_TEST_REDIS_URL
#   scripts/redis-cluster.sh stop
#   scripts/redis-cluster.sh run CMD...   # start, run CMD with
#                                           # VMTRIAGE_TEST_REDIS_URL set, stop
#
# The nodes listen on ports $VMTRIAGE_CLUSTER_PORT (default 7001) and the two
# after it (cluster bus on port+10000), keep nothing on disk, and live in
# $VMTRIAGE_CLUSTER_DIR (default /tmp/vmtriage-cluster). redis-server and
# redis-cli are installed with apt-get when missing. start stops a cluster
# left over from an earlier run in the same directory first.
set -euo pipefail

base=${VMTRIAGE_CLUSTER_PORT:-7001}
dir=${VMTRIAGE_CLUSTER_DIR:-/tmp/vmtriage-cluster}
ports=("$base" "$((base + 1))" "$((base + 2))")

log() { echo "redis-cluster: $*" >&2; }

stop() {
  for p in "${ports[@]}"; do
    local pidfile="$dir/$p/redis.pid"
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    # Only a redis-server we started: its pid file is in our directory.
    if kill -0 "$pid" 2>/dev/null; then
      redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
}

start() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "redis-server/redis-cli not found; installing them with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null
  fi
  stop
  for p in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      log "port $p is already in use (set VMTRIAGE_CLUSTER_PORT to another base port)"
      exit 1
    fi
  done
  local addrs=()
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" \
      --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
      --cluster-node-timeout 5000 --save "" --appendonly no \
      --dir "$dir/$p" --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log"
    addrs+=("127.0.0.1:$p")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 50); do
      redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 || { log "node $p did not start (see $dir/$p/redis.log)"; exit 1; }
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log" >&2; log "cluster create failed"; exit 1; }
  # Every node must agree the cluster is ok (all slots served) before a
  # client's first command can land anywhere.
  for p in "${ports[@]}"; do
    local ok=
    for _ in $(seq 1 100); do
      if redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { log "node $p never reported cluster_state:ok"; exit 1; }
  done
  local url="redis+cluster://$(IFS=,; echo "${addrs[*]}")"
  log "three masters up on ${addrs[*]}"
  echo "$url"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 run CMD..." >&2; exit 2; }
    trap stop EXIT
    VMTRIAGE_TEST_REDIS_URL=$(start)
    export VMTRIAGE_TEST_REDIS_URL
    log "running $* against $VMTRIAGE_TEST_REDIS_URL"
    "$@"
    ;;
  *) echo "usage: $0 start|stop|run CMD..." >&2; exit 2 ;;
esac
