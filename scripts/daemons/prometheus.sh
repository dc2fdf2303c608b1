#!/usr/bin/env bash
# Starts or stops the Prometheus and node_exporter that collectors/prometheus's
# tests talk to: Debian's own daemons, bound to 127.0.0.1 on free ports, with
# storage, config and logs inside DIR. node_exporter runs its textfile
# collector on DIR/textfile (the tests write hardware facts there: EDAC
# counters, hwmon temperatures) plus the netclass and filesystem collectors;
# its own edac and hwmon collectors are off so the machine's real sensors
# do not mix with the tests' ones. Prometheus scrapes it every second.
#
#   prometheus.sh start DIR   # writes DIR/env: the addresses, as shell exports
#   prometheus.sh stop DIR
set -euo pipefail
cmd=${1:?usage: prometheus.sh start|stop DIR}
dir=${2:?usage: prometheus.sh start|stop DIR}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    port_free "$p" && { echo "$p"; return; }
  done
  echo "prometheus.sh: no free port found" >&2
  return 1
}
# up PORT PATH: whether http://127.0.0.1:PORT/PATH answers 200 (bash alone:
# a clean CI machine may have no curl).
up() {
  local status
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  IFS= read -r -t 5 status <&3 || status=
  exec 3<&-
  [[ $status == *" 200 "* ]]
}
wait_up() {
  for _ in $(seq 1 150); do
    up "$1" "$2" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
stop_pid() {
  [ -s "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "$cmd" in
start)
  mkdir -p "$dir/textfile" "$dir/data"
  started=
  for _ in 1 2 3; do
    ne_port=$(free_port)
    prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" \
      --collector.disable-defaults --collector.textfile --collector.textfile.directory="$dir/textfile" \
      --collector.netclass --collector.filesystem \
      >"$dir/node-exporter.log" 2>&1 &
    echo $! >"$dir/node-exporter.pid"
    if wait_up "$ne_port" /metrics "$(cat "$dir/node-exporter.pid")"; then started=1; break; fi
    stop_pid "$dir/node-exporter.pid"
  done
  [ -n "$started" ] || { echo "prometheus.sh: node_exporter did not start:" >&2; tail -5 "$dir/node-exporter.log" >&2; exit 1; }

  cat >"$dir/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$ne_port']
CONF
  started=
  for _ in 1 2 3; do
    prom_port=$(free_port)
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
      --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1h \
      >"$dir/prometheus.log" 2>&1 &
    echo $! >"$dir/prometheus.pid"
    if wait_up "$prom_port" /-/ready "$(cat "$dir/prometheus.pid")"; then started=1; break; fi
    stop_pid "$dir/prometheus.pid"
  done
  [ -n "$started" ] || { echo "prometheus.sh: prometheus did not start:" >&2; tail -5 "$dir/prometheus.log" >&2; exit 1; }

  cat >"$dir/env" <<ENV
export VMTRIAGE_TEST_PROMETHEUS_URL=http://127.0.0.1:$prom_port
export VMTRIAGE_TEST_NODE_EXPORTER_URL=http://127.0.0.1:$ne_port/metrics
export VMTRIAGE_TEST_NODE_EXPORTER_TEXTFILE_DIR=$dir/textfile
ENV
  ;;
stop)
  stop_pid "$dir/prometheus.pid"
  stop_pid "$dir/node-exporter.pid"
  ;;
*)
  echo "prometheus.sh: unknown command $cmd (start or stop)" >&2
  exit 2
  ;;
esac
