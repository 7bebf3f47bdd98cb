#!/usr/bin/env bash
# Runs deckhand's whole test suite: every ctest (unit and integration, as root
# with runc), then the fuzzers for a bounded time. Exits non-zero on any
# failure, and when no test ran at all.
#   DECKHAND_TEST_LABEL=unit   only the quick unit tests
#   DECKHAND_FUZZ_SECONDS=N    time per fuzzer (default 20; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C build -j"${DECKHAND_JOBS:-2}"

label_args=()
if [[ -n "${DECKHAND_TEST_LABEL:-}" ]]; then
  label_args=(-L "$DECKHAND_TEST_LABEL")
fi
(cd build && ctest --output-on-failure --no-tests=error --timeout 600 "${label_args[@]}")

fuzz_seconds="${DECKHAND_FUZZ_SECONDS:-20}"
if [[ "$fuzz_seconds" != 0 && -z "${DECKHAND_TEST_LABEL:-}" ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DDECKHAND_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  targets=(fuzz_messages)
  if grep -q fuzz_layer build-fuzz/build.ninja; then targets+=(fuzz_layer); fi
  ninja -C build-fuzz -j"${DECKHAND_JOBS:-2}" "${targets[@]}"
  for t in "${targets[@]}"; do
    corpus=$(mktemp -d)
    seeds="tests/fuzz/corpus/${t#fuzz_}"
    [[ -d "$seeds" ]] && cp -r "$seeds"/. "$corpus"/
    echo "== fuzzing $t for ${fuzz_seconds}s"
    if ! build-fuzz/bin/"$t" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
         -print_final_stats=1 "$corpus" >"build-fuzz/$t.log" 2>&1; then
      tail -50 "build-fuzz/$t.log"
      rm -rf "$corpus"
      echo "fuzzer $t found a problem"
      exit 1
    fi
    grep -E "stat::number_of_executed_units" "build-fuzz/$t.log" || true
    rm -rf "$corpus"
  done
fi
echo "all tests passed"
