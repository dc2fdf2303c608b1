#!/usr/bin/env bash
# Starts or stops the libvirtd that collectors/libvirt's tests talk to:
# Debian's own daemon, listening on a unix socket in DIR/run only (no TCP),
# configured, logging and keeping its state inside DIR. As root it runs as
# nobody (so it cannot touch the machine's own VMs, networks or /run), as
# anyone else it runs as them (libvirt's session mode).
#
#   libvirtd.sh start DIR   # the socket is DIR/run/libvirt-sock
#   libvirtd.sh stop DIR
set -euo pipefail
cmd=${1:?usage: libvirtd.sh start|stop DIR}
dir=${2:?usage: libvirtd.sh start|stop DIR}

libvirtd_bin=$(command -v libvirtd || echo /usr/sbin/libvirtd)
sock="$dir/run/libvirt-sock"
pidfile="$dir/libvirtd.pid"

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
start)
  mkdir -p "$dir/run" "$dir/home" "$dir/xdg" "$dir/config" "$dir/cache" "$dir/domains"
  chmod 755 "$dir" "$dir/domains"
  cat >"$dir/libvirtd.conf" <<CONF
unix_sock_dir = "$dir/run"
unix_sock_rw_perms = "0777"
unix_sock_ro_perms = "0777"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$dir/libvirtd.log"
CONF
  as=()
  if [ "$(id -u)" = 0 ]; then
    chown -R nobody:nogroup "$dir/run" "$dir/home" "$dir/xdg" "$dir/config" "$dir/cache"
    touch "$dir/libvirtd.log" "$pidfile" && chown nobody:nogroup "$dir/libvirtd.log" "$pidfile"
    as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  fi
  rm -f "$sock" "$sock-ro" "$sock-admin"
  "${as[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$dir/home" XDG_RUNTIME_DIR="$dir/xdg" \
    XDG_CONFIG_HOME="$dir/config" XDG_CACHE_HOME="$dir/cache" \
    "$libvirtd_bin" -f "$dir/libvirtd.conf" -p "$pidfile" -d
  for _ in $(seq 1 100); do
    [ -S "$sock" ] && running && exit 0
    sleep 0.1
  done
  echo "libvirtd.sh: libvirtd did not come up on $sock; its log:" >&2
  tail -20 "$dir/libvirtd.log" >&2 || true
  exit 1
  ;;
stop)
  running || exit 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || exit 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  ;;
*)
  echo "libvirtd.sh: unknown command $cmd (start or stop)" >&2
  exit 2
  ;;
esac
