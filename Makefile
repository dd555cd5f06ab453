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

# The numbers in the README's "Measured" table.
bench:
	go run ./cmd/equilateral bench
	go test -run '^$$' -bench 'RoundTrip$$' -benchtime 5000x ./orchestrator/
	go test -run '^$$' -bench TracingOverhead -benchtime 20000x ./orchestrator/
	go test -run '^$$' -bench . ./bus/
	go test -run '^$$' -bench RunTrue -benchtime 200x ./agents/subprocess/
	go test -run '^$$' -bench . -benchmem ./telemetry/metrics/
	go test -run '^$$' -bench CreateTenants -benchtime=1x ./auth/

ci:
	./.ci/run
