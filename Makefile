.PHONY: test unit demo build bench test-cluster faults

# test is the whole suite, what CI runs: every test on a single Redis (with
# libvirtd, Prometheus, node_exporter and Chromium), the Redis-backed tests
# again on a three-master Cluster, and the fault tests. It installs and
# starts what it needs.
test: unit test-cluster faults

# unit sets up what the tests need (Redis, the collector daemons) and runs
# vet, gofmt and every test once, on a single Redis: the quick loop.
unit:
	./scripts/test.sh

demo:
	go run ./cmd/vmtriage demo

build:
	CGO_ENABLED=0 go build -trimpath -o bin/vmtriage ./cmd/vmtriage

bench:
	go test -run '^$$' -bench . -benchmem ./...

# CLUSTER_PKGS are the packages whose tests use the store test helper, i.e.
# every test that touches Redis.
CLUSTER_PKGS = $(shell go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | awk '$$1 !~ /storetest$$/ && /internal\/store\/storetest/ {print $$1}')

# CLUSTER_SKIP are tests in those packages that need another daemon
# (libvirtd); they run in `make test`, which starts it.
CLUSTER_SKIP = ^(TestLibvirt|TestDaemon)

# test-cluster runs every Redis-backed test again against a three-master
# Redis Cluster on 127.0.0.1:7001-7003, started and stopped around the run.
test-cluster:
	./scripts/redis-cluster.sh run go test -count=1 -skip '$(CLUSTER_SKIP)' $(CLUSTER_PKGS)

# faults runs the fault tests (build tag "faults"): real vmtriage processes
# and a redis-server on spare loopback ports, killed mid-run. Each test is
# bounded by its own deadlines; the whole run takes a few minutes.
faults:
	go test -tags faults -count=1 -timeout 15m -v ./internal/faulttest/
