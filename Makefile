.PHONY: test demo build bench

# test sets up what the tests need (Redis) and runs vet, gofmt and every test.
test:
	./scripts/test.sh

demo:
	go run ./cmd/vmtriage demo

build:
	CGO_ENABLED=0 go build -trimpath -o bin/vmtriage ./cmd/vmtriage

bench:
	go test -run '^$$' -bench . -benchmem ./...
