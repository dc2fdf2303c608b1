#!/usr/bin/env bash
# Runs vmtriage's tests on a fresh Debian machine: makes sure a Redis answers
# on 127.0.0.1:6379 (installing and starting redis-server when it is absent),
# then vets, checks formatting and runs every test. Tests that need Redis fail,
# never skip, when it is missing.
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

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 ./... "$@"
