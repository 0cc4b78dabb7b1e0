# `make check` is exactly what CI runs (.ci/run): vet, a gofmt check, and
# every test with the race detector against SQLite and PostgreSQL.

CUSTOS_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export CUSTOS_TEST_POSTGRES

.PHONY: check vet fmt-check test run bench

check: vet fmt-check test

vet:
	go vet ./...

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test:
	go test -race ./...

run:
	go run ./cmd/custos serve --data ./data

# The benchmarks behind docs/benchmarks.md, several runs each, with
# benchstat summaries. Run on a quiet machine.
bench:
	scripts/bench.sh bench-out
