# The same steps CI runs (.ci/run); the README's test command is `go test -race -timeout 30m ./...`.
.PHONY: all fmt vet test bench ci build

all: ci

build:
	go build -o equilateral ./cmd/equilateral

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

test:
	go test -race -timeout 30m ./...

bench:
	go test -run '^$$' -bench . -benchtime=1x ./auth/

ci: fmt vet test
