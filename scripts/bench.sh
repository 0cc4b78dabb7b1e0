#!/usr/bin/env bash
# Runs the benchmarks behind docs/benchmarks.md, several times each, and
# summarises them with benchstat. Run it on a quiet machine:
#   scripts/bench.sh [out-dir]
# Needs PostgreSQL at CUSTOS_TEST_POSTGRES for the PostgreSQL rows and
# benchstat (go install golang.org/x/perf/cmd/benchstat@latest).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out}
mkdir -p "$out"
export CUSTOS_TEST_POSTGRES=${CUSTOS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
count=${COUNT:-5}

run() { # name package pattern benchtime [extra flags…]; ONLY=name runs one
  local name=$1 pkg=$2 pat=$3 bt=$4; shift 4
  if [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ]; then return; fi
  echo "== $name" >&2
  go test "$pkg" -run '^$' -bench "$pat" -benchtime "$bt" -count "${COUNT:-$count}" "$@" | tee "$out/$name.txt" >&2
}

run decide       ./policy   '^BenchmarkDecide$'           200000x
run append       ./audit    '^BenchmarkAppend64$'         50000x
run openloop     ./audit    '^BenchmarkAppendOpenLoop1000$' 5000x
run verify       ./audit    '^BenchmarkVerify$'           3x
run reveal       ./http     '^Benchmark(RevealHTTP|BareHTTP)$' 20000x
run detect       ./detect   '^BenchmarkEngine$'           600000x
run relay        ./relay    '^BenchmarkRelay$'            2000x
run console      ./http     '^BenchmarkConsolePages$'     200x
run ingest       ./sqlstore '^BenchmarkIngest$'           40x
# Offer more than fits, to read capacity off reveals/s (3 rounds of 1, 2, 3
# PostgreSQL-backed replicas).
CUSTOS_BENCH_RATE=${REPLICA_RATE:-3000} CUSTOS_BENCH_DURATION=${REPLICA_DURATION:-10s} \
  COUNT=${REPLICA_COUNT:-3} run replicas ./cmd/custos '^BenchmarkReplicas$' 1x -timeout 30m
COUNT=${BULK_COUNT:-3} run ingest-bulk ./sqlstore '^BenchmarkIngestBulk$' 1x -custos.bulk -timeout 30m

for f in "$out"/*.txt; do
  echo "== $(basename "$f" .txt)"
  benchstat "$f" || true
done
